"""Readiness: the replica can reach its database and its ephemeral store."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from idp.persistence import UnitOfWork
from idp.ports import EphemeralStore, StoreUnavailable


class HealthService:
    def __init__(self, session: Session, uow: UnitOfWork, store: EphemeralStore) -> None:
        self._db = session
        self._uow = uow
        self._store = store

    def problems(self) -> list[str]:
        """Names of the dependencies that are down; empty when ready."""
        down = []
        try:
            self._db.execute(text("SELECT 1"))
        except SQLAlchemyError:
            down.append("database")
        finally:
            self._uow.end_read()
        try:
            self._store.ping()
        except StoreUnavailable:
            down.append("store")
        return down

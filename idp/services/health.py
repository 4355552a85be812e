"""Readiness: the replica can reach its database and its ephemeral store, its schema is at
the code's migration head, and a key can sign tokens of every supported algorithm."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from idp.persistence import UnitOfWork
from idp.ports import EphemeralStore, StoreUnavailable

#: What an operator does about each part that is down (the body of a 503 /readyz).
REMEDIES = {
    "database": "the database does not answer",
    "store": "Redis does not answer",
    "migrations": "the schema is behind the code: run `idp db upgrade`",
    "keys": "no key can sign {algs}: run `idp keys rotate --alg {alg}`",
}


class HealthService:
    def __init__(
        self,
        session: Session,
        uow: UnitOfWork,
        store: EphemeralStore,
        schema_behind: Callable[[], bool] = lambda: False,
        missing_algorithms: Callable[[], list[str]] = list,
    ) -> None:
        self._db = session
        self._uow = uow
        self._store = store
        self._schema_behind = schema_behind
        self._missing_algorithms = missing_algorithms

    def problems(self) -> list[str]:
        """Names of the parts that are down; empty when ready."""
        return list(self.report())

    def report(self) -> dict[str, str]:
        """Each part that is down, with what to do about it; empty when ready. Migrations and
        keys are only checked on a database that answers."""
        down: dict[str, str] = {}
        try:
            self._db.execute(text("SELECT 1"))
            if self._schema_behind():
                down["migrations"] = REMEDIES["migrations"]
            else:
                missing = self._missing_algorithms()
                if missing:
                    down["keys"] = REMEDIES["keys"].format(algs=", ".join(missing), alg=missing[0])
        except SQLAlchemyError:
            down = {"database": REMEDIES["database"]}
        finally:
            self._release()
        try:
            self._store.ping()
        except StoreUnavailable:
            down["store"] = REMEDIES["store"]
        return down

    def _release(self) -> None:
        # Ending the read on a connection the server dropped fails too; the pool discards it.
        with contextlib.suppress(SQLAlchemyError):
            self._uow.end_read()

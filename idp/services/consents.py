"""Consent of a user to a (non-first-party) client, remembered per client and revocable."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from idp.adapters.sql.models import Client, Consent
from idp.persistence import UnitOfWork


class ConsentService:
    def __init__(
        self, session: Session, uow: UnitOfWork, tokens, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = session
        self._uow = uow
        self._tokens = tokens
        self._clock = clock

    def covers(self, user_id: str, client_id: str, scopes: Sequence[str]) -> bool:
        row = self._db.get(Consent, (user_id, client_id))
        return row is not None and set(scopes) <= set(row.scopes)

    def grant(self, user_id: str, client_id: str, scopes: Sequence[str]) -> None:
        with self._uow.transaction():
            row = self._db.get(Consent, (user_id, client_id))
            if row is None:
                row = Consent(user_id=user_id, client_id=client_id, scopes=[], granted_at=0)
                self._db.add(row)
            row.scopes = sorted(set(row.scopes) | set(scopes))
            row.granted_at = int(self._clock())

    def revoke(self, user_id: str, client_id: str) -> bool:
        with self._uow.transaction():
            done = self._db.execute(
                delete(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id)
            ).rowcount
        return done == 1

    def revoke_app(self, user_id: str, client_id: str) -> bool:
        """«Отозвать доступ» on /account: the consent and every token the client holds for
        the user end together, or neither does."""
        with self._uow.transaction():
            done = self.revoke(user_id, client_id)
            self._tokens.revoke_for(user_id, client_id=client_id)
        return done

    def list_for(self, user_id: str) -> list[tuple[Consent, Client]]:
        rows = self._db.execute(
            select(Consent, Client)
            .join(Client, Client.client_id == Consent.client_id)
            .where(Consent.user_id == user_id)
            .order_by(Consent.granted_at.desc())
        )
        return [(c, cl) for c, cl in rows]

"""Consent of a user to a (non-first-party) client, remembered per client and revocable."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from idp.adapters.sql.models import Client, Consent


class ConsentService:
    def __init__(self, session: Session, clock: Callable[[], float] = time.time) -> None:
        self._db = session
        self._clock = clock

    def covers(self, user_id: str, client_id: str, scopes: Sequence[str]) -> bool:
        row = self._db.get(Consent, (user_id, client_id))
        return row is not None and set(scopes) <= set(row.scopes)

    def grant(self, user_id: str, client_id: str, scopes: Sequence[str]) -> None:
        row = self._db.get(Consent, (user_id, client_id))
        if row is None:
            row = Consent(user_id=user_id, client_id=client_id, scopes=[], granted_at=0)
            self._db.add(row)
        row.scopes = sorted(set(row.scopes) | set(scopes))
        row.granted_at = int(self._clock())
        self._db.commit()

    def revoke(self, user_id: str, client_id: str) -> bool:
        done = self._db.execute(
            delete(Consent).where(Consent.user_id == user_id, Consent.client_id == client_id)
        ).rowcount
        self._db.commit()
        return done == 1

    def list_for(self, user_id: str) -> list[tuple[Consent, Client]]:
        rows = self._db.execute(
            select(Consent, Client)
            .join(Client, Client.client_id == Consent.client_id)
            .where(Consent.user_id == user_id)
            .order_by(Consent.granted_at.desc())
        )
        return [(c, cl) for c, cl in rows]

"""The SQL adapter of :class:`idp.persistence.SessionStore`."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, scoped_session

from idp.adapters.sql.models import Client, SessionClient, SsoSession

# INSERT … ON CONFLICT DO NOTHING, built once per dialect (SQLite, PostgreSQL).
_NOTE_CLIENT = {
    is_postgresql: dialect.insert(SessionClient.__table__).on_conflict_do_nothing()
    for is_postgresql, dialect in ((False, sqlite), (True, postgresql))
}


class SqlSessionStore:
    def __init__(self, session: Session | scoped_session) -> None:
        self._db = session
        self._postgresql: bool | None = None  # the bind's dialect, looked up once

    def add(self, session: SsoSession) -> None:
        self._db.add(session)

    def get(self, session_id: str) -> SsoSession | None:
        return self._db.get(SsoSession, session_id)

    def by_token_hash(self, token_hash: str) -> SsoSession | None:
        return self._db.scalar(select(SsoSession).where(SsoSession.token_hash == token_hash))

    def end(self, session_id: str, now: int) -> bool:
        ended = self._db.execute(
            update(SsoSession)
            .where(SsoSession.id == session_id, SsoSession.revoked_at.is_(None))
            .values(revoked_at=now)
        ).rowcount
        return ended == 1

    def end_all(self, user_id: str, now: int, keep: str | None = None) -> int:
        query = update(SsoSession).where(
            SsoSession.user_id == user_id, SsoSession.revoked_at.is_(None)
        )
        if keep:
            query = query.where(SsoSession.id != keep)
        return self._db.execute(query.values(revoked_at=now)).rowcount

    def live_for(self, user_id: str, now: int) -> list[SsoSession]:
        return list(
            self._db.scalars(
                select(SsoSession)
                .where(
                    SsoSession.user_id == user_id,
                    SsoSession.revoked_at.is_(None),
                    SsoSession.expires_at > now,
                )
                .order_by(SsoSession.created_at.desc())
            )
        )

    def note_client(self, session_id: str, client_id: str) -> None:
        # One statement whether the pair is there or not: a pair already noted (by an
        # earlier or a parallel token request) is left as it is, rather than failing with an
        # IntegrityError that would end the caller's whole unit of work.
        if self._postgresql is None:
            self._postgresql = self._db.get_bind().dialect.name == "postgresql"
        self._db.execute(
            _NOTE_CLIENT[self._postgresql], {"session_id": session_id, "client_id": client_id}
        )

    def clients_of(self, session_id: str) -> list[Client]:
        return list(
            self._db.scalars(
                select(Client)
                .join(SessionClient, SessionClient.client_id == Client.client_id)
                .where(SessionClient.session_id == session_id)
            )
        )

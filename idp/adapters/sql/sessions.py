"""The SQL adapter of :class:`idp.persistence.SessionStore`."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, scoped_session

from idp.adapters.sql.models import Client, SessionClient, SsoSession


class SqlSessionStore:
    def __init__(self, session: Session | scoped_session) -> None:
        self._db = session

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
        if self._db.get(SessionClient, (session_id, client_id)) is not None:
            return
        # A parallel token request may insert the same pair: ignore it rather than fail, as
        # an IntegrityError would end the caller's whole unit of work.
        dialect = postgresql if self._db.get_bind().dialect.name == "postgresql" else sqlite
        self._db.execute(
            dialect.insert(SessionClient)
            .values(session_id=session_id, client_id=client_id)
            .on_conflict_do_nothing()
        )

    def clients_of(self, session_id: str) -> list[Client]:
        return list(
            self._db.scalars(
                select(Client)
                .join(SessionClient, SessionClient.client_id == Client.client_id)
                .where(SessionClient.session_id == session_id)
            )
        )

"""Single sign-on sessions of the browser.

The cookie carries a 256-bit secret; the database keeps only its SHA-256, so a leaked table
cannot be replayed as cookies. A new secret is issued at every sign-in (no fixation, ASVS
3.2.1) and any session the browser already had is ended.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from idp.adapters.sql.models import Client, SessionClient, SsoSession, User
from idp.persistence import UnitOfWork
from idp.services.crypto import new_token, sha256_hex


@dataclass(frozen=True)
class OpenedSession:
    session: SsoSession
    cookie_value: str
    max_age: int | None  # None: a browser-session cookie


class SessionService:
    def __init__(
        self,
        session: Session,
        uow: UnitOfWork,
        session_ttl: int,
        remember_me_ttl: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = session
        self._uow = uow
        self._ttl = session_ttl
        self._remember_ttl = remember_me_ttl
        self._clock = clock

    def open(
        self,
        user: User,
        amr: list[str],
        acr: str | None,
        remember: bool,
        ip: str | None,
        user_agent: str | None,
        previous_cookie: str | None = None,
    ) -> OpenedSession:
        with self._uow.transaction():
            if previous_cookie:
                old = self.current(previous_cookie)
                if old is not None:
                    self.end(old)
            return self._open(user, amr, acr, remember, ip, user_agent)

    def _open(
        self,
        user: User,
        amr: list[str],
        acr: str | None,
        remember: bool,
        ip: str | None,
        user_agent: str | None,
    ) -> OpenedSession:
        now = int(self._clock())
        ttl = self._remember_ttl if remember else self._ttl
        secret = new_token(32)
        row = SsoSession(
            id=str(uuid.uuid4()),
            token_hash=sha256_hex(secret),
            user_id=user.id,
            auth_time=now,
            acr=acr,
            amr=amr,
            remember=remember,
            user_agent=(user_agent or "")[:300] or None,
            ip=ip,
            created_at=now,
            last_seen_at=now,
            expires_at=now + ttl,
        )
        self._db.add(row)
        return OpenedSession(row, secret, ttl if remember else None)

    def current(self, cookie_value: str | None) -> SsoSession | None:
        if not cookie_value or len(cookie_value) > 100:
            return None
        row = self._db.scalar(
            select(SsoSession).where(SsoSession.token_hash == sha256_hex(cookie_value))
        )
        if row is None or row.revoked_at is not None or row.expires_at <= self._clock():
            return None
        user = self._db.get(User, row.user_id)
        if user is None or user.status != "active":
            return None
        return row

    def get(self, session_id: str) -> SsoSession | None:
        return self._db.get(SsoSession, session_id)

    def note_client(self, session_id: str, client_id: str) -> None:
        """Remember that ``client_id`` received tokens in this session (for logout)."""
        if self._db.get(SessionClient, (session_id, client_id)) is not None:
            return
        # A parallel token request may insert the same pair: ignore it rather than fail, as
        # an IntegrityError would end the caller's whole unit of work.
        dialect = postgresql if self._db.get_bind().dialect.name == "postgresql" else sqlite
        with self._uow.transaction():
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

    def end(self, row: SsoSession) -> bool:
        """End a session; True when this call ended it (it was still live)."""
        with self._uow.transaction():
            ended = self._db.execute(
                update(SsoSession)
                .where(SsoSession.id == row.id, SsoSession.revoked_at.is_(None))
                .values(revoked_at=int(self._clock()))
            ).rowcount
        return ended == 1

    def list_for(self, user_id: str) -> list[SsoSession]:
        now = int(self._clock())
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

"""Single sign-on sessions of the browser.

The cookie carries a 256-bit secret; the database keeps only its SHA-256, so a leaked table
cannot be replayed as cookies. A new secret is issued at every sign-in (no fixation, ASVS
3.2.1) and any session the browser already had is ended. Storage sits behind the
:class:`~idp.persistence.SessionStore` port.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from idp.adapters.sql.models import Client, SsoSession, User
from idp.domain.errors import AccountBlocked
from idp.persistence import SessionStore, UnitOfWork
from idp.services.audit import AuditService
from idp.services.crypto import new_token, sha256_hex


@dataclass(frozen=True)
class OpenedSession:
    session: SsoSession
    cookie_value: str
    max_age: int | None  # None: a browser-session cookie


class SessionService:
    def __init__(
        self,
        store: SessionStore,
        uow: UnitOfWork,
        load_user: Callable[[str], User | None],
        session_ttl: int,
        remember_me_ttl: int,
        clock: Callable[[], float] = time.time,
        audit: AuditService | None = None,
    ) -> None:
        self._audit = audit or AuditService.in_memory(clock)
        self._store = store
        self._uow = uow
        self._load_user = load_user
        self._ttl = session_ttl
        self._remember_ttl = remember_me_ttl
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

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
        """Sign ``user`` in; an account blocked by the support desk is refused whatever the
        method (password, social network…) with :class:`AccountBlocked`."""
        if user.blocked_at is not None:
            raise AccountBlocked("blocked by the support desk")
        now = self._now()
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
        with self._uow.transaction():
            if previous_cookie:
                old = self.current(previous_cookie)
                if old is not None:
                    self.end(old, reason="new_signin")
            self._store.add(row)
            self._audit.record(
                "signin.success",
                subject=user.id,
                address=ip,
                user_agent=user_agent,
                details={"method": "+".join(amr), "session": row.id},
            )
        return OpenedSession(row, secret, ttl if remember else None)

    def current(self, cookie_value: str | None) -> SsoSession | None:
        if not cookie_value or len(cookie_value) > 100:
            return None
        row = self._store.by_token_hash(sha256_hex(cookie_value))
        if row is None or row.revoked_at is not None or row.expires_at <= self._clock():
            return None
        user = self._load_user(row.user_id)
        if user is None or not user.usable:
            return None
        return row

    def get(self, session_id: str) -> SsoSession | None:
        return self._store.get(session_id)

    def note_client(self, session_id: str, client_id: str) -> None:
        """Remember that ``client_id`` received tokens in this session (for logout)."""
        with self._uow.transaction():
            self._store.note_client(session_id, client_id)

    def clients_of(self, session_id: str) -> list[Client]:
        return self._store.clients_of(session_id)

    def end(self, row: SsoSession, reason: str = "logout") -> bool:
        """End a session; True when this call ended it (it was still live)."""
        with self._uow.transaction():
            ended = self._store.end(row.id, self._now())
            if ended:
                self._audit.record(
                    "session.ended",
                    subject=row.user_id,
                    details={"reason": reason, "session": row.id},
                )
            return ended

    def end_all(
        self,
        user_id: str,
        keep: str | None = None,
        reason: str = "account_change",
    ) -> int:
        """End every live session of the account but ``keep`` (password change, recovery,
        the support desk)."""
        with self._uow.transaction():
            ended = self._store.end_all(user_id, self._now(), keep)
            if ended:
                self._audit.record(
                    "session.ended",
                    subject=user_id,
                    details={"reason": reason, "sessions": ended},
                )
            return ended

    def list_for(self, user_id: str) -> list[SsoSession]:
        return self._store.live_for(user_id, self._now())

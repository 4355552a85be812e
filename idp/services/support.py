"""The support desk (``idp support``): find an account, see its state, and act on it.

Every call names the ``operator`` (the support-desk person) and leaves an audit event with
that name, looking an account up included. Blocking is the strongest action: the account
cannot sign in (after a correct password it is told to call support, see
:mod:`idp.services.authentication`), its sessions end, its grants are revoked (refresh
tokens refused, introspection inactive), and userinfo answers 401 for its access tokens.
Access tokens are JWTs, so a resource server that checks them offline accepts one until it
expires (``IDP_ACCESS_TOKEN_TTL``, 10 minutes by default).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from idp.adapters.sql.models import SsoSession, User
from idp.domain.contacts import parse_login
from idp.domain.errors import NotFound, ValidationError
from idp.persistence import UnitOfWork
from idp.services.audit import AuditService


@dataclass(frozen=True)
class AccountState:
    """What the support desk sees of an account."""

    user: User
    sessions: list[SsoSession]
    failures: int  # sign-in failures counted in the current window
    locked_for: int  # seconds left on a lockout; 0 when not locked


class SupportService:
    def __init__(
        self,
        session: Session,
        uow: UnitOfWork,
        users,
        sessions,
        logout,
        tokens,
        throttle,
        audit: AuditService,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = session
        self._uow = uow
        self._users = users
        self._sessions = sessions
        self._logout = logout
        self._tokens = tokens
        self._throttle = throttle
        self._audit = audit
        self._clock = clock

    @staticmethod
    def _operator(operator: str) -> str:
        operator = (operator or "").strip()
        if not operator or len(operator) > 100:
            raise ValidationError("the operator's name is required (at most 100 characters)")
        return operator

    def find(self, query: str, operator: str) -> User:
        """The account whose phone (any notation) or e-mail is ``query``, confirmed or not,
        or whose ``sub`` it is."""
        operator = self._operator(operator)
        query = (query or "").strip()
        user = self._db.get(User, query) if len(query) == 36 else None
        if user is None:
            parse_login(query)  # neither a phone nor an e-mail: a ValidationError that says so
            user = self._users.find_any(query)
        if user is None:
            self._uow.end_read()
            raise NotFound("no account has this phone, e-mail or id")
        return user

    def show(self, query: str, operator: str) -> AccountState:
        user = self.find(query, operator)
        account = f"user:{user.id}"
        with self._uow.transaction():
            self._audit.record("support.lookup", subject=user.id, operator=operator)
        return AccountState(
            user=user,
            sessions=self._sessions.list_for(user.id),
            failures=self._throttle.failures(account),
            locked_for=self._throttle.locked_for(account),
        )

    def unlock(self, query: str, operator: str) -> User:
        """Lift a sign-in lockout and forget the failures counted against the account."""
        user = self.find(query, operator)
        self._throttle.succeeded(f"user:{user.id}")
        self._audit.record("support.unlocked", subject=user.id, operator=operator)
        return user

    def end_sessions(self, query: str, operator: str) -> int:
        """End every session of the account and revoke its tokens; how many sessions."""
        user = self.find(query, operator)
        with self._uow.transaction():
            ended = self._end_everything(user, operator)
            self._audit.record(
                "support.sessions_ended",
                subject=user.id,
                operator=operator,
                details={"sessions": ended},
            )
        return ended

    def _end_everything(self, user: User, operator: str) -> int:
        """Every live session ended as a logout (its clients get back-channel logout
        tokens), then whatever grant is left revoked; how many sessions."""
        live = self._sessions.list_for(user.id)
        for session in live:
            self._logout.end(session, reason="support")
        self._tokens.revoke_for(user.id)
        return len(live)

    def block(self, query: str, operator: str, reason: str | None = None) -> User:
        """Block the account: no sign-in, sessions ended, tokens revoked. Blocking a blocked
        account changes nothing but is recorded."""
        user = self.find(query, operator)
        with self._uow.transaction():
            if user.blocked_at is None:
                user.blocked_at = int(self._clock())
                user.updated_at = user.blocked_at
            self._end_everything(user, operator)
            self._audit.record(
                "support.blocked",
                subject=user.id,
                operator=operator,
                details={"reason": (reason or "")[:200] or None},
            )
        return user

    def unblock(self, query: str, operator: str) -> User:
        user = self.find(query, operator)
        with self._uow.transaction():
            user.blocked_at = None
            user.updated_at = int(self._clock())
            self._audit.record("support.unblocked", subject=user.id, operator=operator)
        return user

"""Password sign-in: one generic failure for unknown login, wrong password, locked account.

All three paths spend one argon2id verification, so neither the answer nor its timing tells
which happened (OWASP Authentication Cheat Sheet; checklist item 29). An account blocked by
the support desk is told so only after its correct password (:class:`AccountBlocked`): the
public learns nothing, the person learns to call support. Failures, lockouts and blocked
attempts go to the audit trail (successes are recorded with the session they open).
"""

from __future__ import annotations

from idp.adapters.metrics_twin import NullMetrics
from idp.adapters.sql.models import User
from idp.domain.errors import AccountBlocked, AuthenticationFailed, Throttled
from idp.persistence import UnitOfWork
from idp.ports import Metrics
from idp.services.audit import AuditService
from idp.services.passwords import PasswordHasher
from idp.services.throttle import LoginThrottle
from idp.services.users import UserService

PASSWORD_ACR = "urn:elk:loa:1"


class AuthenticationService:
    def __init__(
        self,
        uow: UnitOfWork,
        users: UserService,
        hasher: PasswordHasher,
        throttle: LoginThrottle,
        metrics: Metrics | None = None,
        audit: AuditService | None = None,
    ) -> None:
        self._uow = uow
        self._users = users
        self._hasher = hasher
        self._throttle = throttle
        self._metrics = metrics or NullMetrics()
        self._audit = audit or AuditService.in_memory()

    def authenticate(self, login: str, password: str, address: str) -> User:
        try:
            self._throttle.check_address(address)
        except Throttled:
            self._metrics.sign_in("password", "throttled")
            raise
        login = (login or "")[:254]
        user = self._users.find_by_login(login)
        account = f"user:{user.id}" if user else f"login:{login.strip().lower()}"
        subject = user.id if user else None
        if not self._throttle.admit(account):
            self._hasher.verify(None, password)
            self._throttle.failed(address)
            self._metrics.sign_in("password", "locked")
            self._audit.record("signin.locked", subject=subject, address=address)
            raise AuthenticationFailed("locked")
        if not self._hasher.verify(user.password_hash if user else None, password):
            self._throttle.failed(address)
            self._metrics.sign_in("password", "failure")
            self._audit.record(
                "signin.failure",
                subject=subject,
                address=address,
                details={"reason": "wrong_password" if user else "unknown_login"},
            )
            raise AuthenticationFailed("bad credentials")
        if user.blocked_at is not None:
            self._metrics.sign_in("password", "blocked")
            self._audit.record("signin.blocked", subject=user.id, address=address)
            raise AccountBlocked("blocked by the support desk")
        self._throttle.succeeded(account)
        self._metrics.sign_in("password", "success")
        if self._hasher.needs_rehash(user.password_hash):
            with self._uow.transaction():
                user.password_hash = self._hasher.hash(password)
        return user

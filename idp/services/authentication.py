"""Password sign-in: one generic failure for unknown login, wrong password, locked account.

All three paths spend one argon2id verification, so neither the answer nor its timing tells
which happened (OWASP Authentication Cheat Sheet; checklist item 29).
"""

from __future__ import annotations

from idp.adapters.metrics_twin import NullMetrics
from idp.adapters.sql.models import User
from idp.domain.errors import AuthenticationFailed, Throttled
from idp.persistence import UnitOfWork
from idp.ports import Metrics
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
    ) -> None:
        self._uow = uow
        self._users = users
        self._hasher = hasher
        self._throttle = throttle
        self._metrics = metrics or NullMetrics()

    def authenticate(self, login: str, password: str, address: str) -> User:
        try:
            self._throttle.check_address(address)
        except Throttled:
            self._metrics.sign_in("password", "throttled")
            raise
        login = (login or "")[:254]
        user = self._users.find_by_login(login)
        account = f"user:{user.id}" if user else f"login:{login.strip().lower()}"
        if not self._throttle.admit(account):
            self._hasher.verify(None, password)
            self._throttle.failed(address)
            self._metrics.sign_in("password", "locked")
            raise AuthenticationFailed("locked")
        if not self._hasher.verify(user.password_hash if user else None, password):
            self._throttle.failed(address)
            self._metrics.sign_in("password", "failure")
            raise AuthenticationFailed("bad credentials")
        self._throttle.succeeded(account)
        self._metrics.sign_in("password", "success")
        if self._hasher.needs_rehash(user.password_hash):
            with self._uow.transaction():
                user.password_hash = self._hasher.hash(password)
        return user

"""The services of one application instance, built once by the composition root."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from idp.config import Settings
from idp.ports import EphemeralStore, LogoutNotifier
from idp.services.authentication import AuthenticationService
from idp.services.clients import ClientService
from idp.services.consents import ConsentService
from idp.services.crypto import KeyedDigest, Sealer
from idp.services.health import HealthService
from idp.services.keys import KeyService
from idp.services.logout import LogoutService
from idp.services.passwords import PasswordHasher
from idp.services.sessions import SessionService
from idp.services.throttle import LoginThrottle
from idp.services.tokens import TokenPolicy, TokenService
from idp.services.users import UserService


@dataclass
class Services:
    store: EphemeralStore
    digest: KeyedDigest
    hasher: PasswordHasher
    keys: KeyService
    clients: ClientService
    users: UserService
    sessions: SessionService
    consents: ConsentService
    tokens: TokenService
    auth: AuthenticationService
    logout: LogoutService
    throttle: LoginThrottle
    health: HealthService
    clock: Callable[[], float]


def build_services(
    settings: Settings,
    session: Session,
    store: EphemeralStore,
    notifier: LogoutNotifier,
    clock: Callable[[], float] = time.time,
) -> Services:
    digest = KeyedDigest(settings.secret_key)
    hasher = PasswordHasher()
    keys = KeyService(
        session,
        Sealer(settings.secret_key),
        max_token_ttl=max(settings.access_token_ttl, settings.id_token_ttl),
        clock=clock,
    )
    users = UserService(session, hasher, clock)
    sessions = SessionService(session, settings.session_ttl, settings.remember_me_ttl, clock)
    tokens = TokenService(
        session,
        keys,
        TokenPolicy(
            issuer=settings.issuer,
            code_ttl=settings.code_ttl,
            access_token_ttl=settings.access_token_ttl,
            id_token_ttl=settings.id_token_ttl,
            refresh_token_ttl=settings.refresh_token_ttl,
            default_alg=settings.default_signing_alg,
        ),
        clock,
    )
    throttle = LoginThrottle(
        store,
        max_failures=settings.login_max_failures,
        lockout_base=settings.login_lockout_base,
        lockout_max=settings.login_lockout_max,
        address_max=settings.address_max_failures,
        address_window=settings.address_window,
    )
    return Services(
        store=store,
        digest=digest,
        hasher=hasher,
        keys=keys,
        clients=ClientService(session, digest, settings.scopes_supported, clock),
        users=users,
        sessions=sessions,
        consents=ConsentService(session, clock),
        tokens=tokens,
        auth=AuthenticationService(session, users, hasher, throttle),
        logout=LogoutService(settings.issuer, sessions, tokens, keys, notifier, clock),
        throttle=throttle,
        health=HealthService(session, store),
        clock=clock,
    )

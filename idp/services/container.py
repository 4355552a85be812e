"""The services of one application instance, built once by the composition root."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from idp.adapters.sql.audit import SqlAuditLog
from idp.adapters.sql.housekeeping import SqlHousekeeping
from idp.adapters.sql.models import User
from idp.adapters.sql.outbox import SqlOutbox
from idp.adapters.sql.schema import SqlSchemaCheck
from idp.adapters.sql.sessions import SqlSessionStore
from idp.adapters.sql.social import SqlSocialIdentityStore
from idp.adapters.sql.tokens import SqlTokenStore
from idp.adapters.sql.uow import SqlUnitOfWork
from idp.config import LINKING_RESOURCE, Settings
from idp.domain.audit import RequestContext, no_request
from idp.persistence import UnitOfWork
from idp.ports import (
    CaptchaRenderer,
    EphemeralStore,
    LinkingClient,
    Metrics,
    SocialProvider,
    Waker,
)
from idp.services.audit import AuditService
from idp.services.authentication import AuthenticationService
from idp.services.auto_attach import AutoAttachService
from idp.services.cabinet import CabinetService
from idp.services.captcha import CaptchaPolicy, CaptchaService
from idp.services.clients import ClientService
from idp.services.consents import ConsentService
from idp.services.crypto import KeyedDigest, Sealer
from idp.services.delivery import (
    ChannelHealth,
    DeliveryService,
    MessageTemplates,
    SmsPumpingGuard,
)
from idp.services.health import HealthService
from idp.services.housekeeping import HousekeepingService, Retention
from idp.services.keys import KeyService
from idp.services.legacy import LegacyUpgrade
from idp.services.logout import LogoutService
from idp.services.password_policy import PasswordPolicy
from idp.services.passwords import PasswordHasher
from idp.services.profile import ProfileService
from idp.services.recovery import RecoveryService
from idp.services.registration import RegistrationService
from idp.services.sessions import SessionService
from idp.services.social import SocialService
from idp.services.social_proof import SocialProofService
from idp.services.support import SupportService
from idp.services.throttle import LoginThrottle
from idp.services.tokens import TokenPolicy, TokenService
from idp.services.users import UserService
from idp.services.verification import ContactVerifier


@dataclass
class Services:
    uow: UnitOfWork
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
    verifier: ContactVerifier
    delivery: DeliveryService
    outbox: SqlOutbox
    channels: ChannelHealth
    captcha: CaptchaService
    captcha_policy: CaptchaPolicy
    password_policy: PasswordPolicy
    legacy: LegacyUpgrade
    registration: RegistrationService
    recovery: RecoveryService
    profile: ProfileService
    cabinet: CabinetService
    social: SocialService
    social_proof: SocialProofService
    auto_attach: AutoAttachService
    audit: AuditService
    support: SupportService
    housekeeping: HousekeepingService


def build_services(
    settings: Settings,
    session: Session,
    store: EphemeralStore,
    waker: Waker,
    renderer: CaptchaRenderer,
    clock: Callable[[], float] = time.time,
    on_confirmed: Callable[[User], None] | None = None,
    linking: Callable[[], LinkingClient] | None = None,
    social_providers: dict[str, SocialProvider] | None = None,
    metrics: Metrics | None = None,
    request_context: Callable[[], RequestContext] = no_request,
) -> Services:
    # One unit of work over the session, shared by every service: a use case commits once.
    uow = SqlUnitOfWork(session)
    # Security events, written in the transaction of the change each records.
    audit = AuditService(SqlAuditLog(session), uow, clock, request_context)
    digest = KeyedDigest(settings.secret_key)
    hasher = PasswordHasher()
    keys = KeyService(
        session,
        Sealer(settings.secret_key),
        max_token_ttl=max(settings.access_token_ttl, settings.id_token_ttl),
        clock=clock,
        uow=uow,
        audit=audit,
    )
    # "Account confirmed": the seam where the linking service attaches billing accounts.
    auto_attach = AutoAttachService(session, uow, linking or _no_linking, clock)
    users = UserService(session, uow, hasher, clock, audit=audit)
    sessions = SessionService(
        SqlSessionStore(session),
        uow,
        users.get,
        settings.session_ttl,
        settings.remember_me_ttl,
        clock,
        audit=audit,
    )
    clients = ClientService(
        session, uow, digest, settings.scopes_supported, clock, store, audit=audit
    )
    tokens = TokenService(
        SqlTokenStore(session),
        uow,
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
        clients=clients.get,
    )
    throttle = LoginThrottle(
        store,
        max_failures=settings.login_max_failures,
        lockout_base=settings.login_lockout_base,
        lockout_max=settings.login_lockout_max,
        address_max=settings.address_max_failures,
        address_window=settings.address_window,
        metrics=metrics,
    )
    verifier = ContactVerifier(session, uow, clock)
    # Every side effect is queued in the caller's transaction; `idp worker` sends it.
    outbox = SqlOutbox(session, waker, clock)
    logout = LogoutService(settings.issuer, sessions, tokens, keys, outbox, uow, clock)
    channels = ChannelHealth(store)
    delivery = DeliveryService(outbox, store, MessageTemplates(), SmsPumpingGuard(store), channels)
    password_policy = PasswordPolicy.load_default()
    legacy = LegacyUpgrade(session, hasher, password_policy, clock, uow=uow)
    auth = AuthenticationService(uow, users, hasher, throttle, metrics, audit=audit)
    social = SocialService(
        session,
        uow,
        social_providers or {},
        SqlSocialIdentityStore(session),
        store,
        clock,
        metrics,
        audit=audit,
    )
    return Services(
        uow=uow,
        store=store,
        digest=digest,
        hasher=hasher,
        keys=keys,
        clients=clients,
        users=users,
        sessions=sessions,
        consents=ConsentService(session, uow, tokens, clock),
        tokens=tokens,
        auth=auth,
        logout=logout,
        throttle=throttle,
        health=HealthService(
            session,
            uow,
            store,
            schema_behind=SqlSchemaCheck(session).behind,
            missing_algorithms=keys.missing_algorithms,
        ),
        clock=clock,
        verifier=verifier,
        delivery=delivery,
        outbox=outbox,
        channels=channels,
        captcha=CaptchaService(store, renderer, per_address=settings.captcha_images_per_address),
        captcha_policy=CaptchaPolicy(store),
        password_policy=password_policy,
        legacy=legacy,
        registration=RegistrationService(
            session,
            uow,
            verifier,
            delivery,
            users,
            hasher,
            password_policy,
            legacy,
            settings.issuer,
            settings.terms_version,
            settings.privacy_version,
            on_confirmed or auto_attach.run,
            clock,
            link_social=social.link_in_transaction,
            audit=audit,
        ),
        recovery=RecoveryService(
            session,
            uow,
            verifier,
            delivery,
            hasher,
            password_policy,
            sessions,
            tokens,
            settings.issuer,
            clock,
            audit=audit,
        ),
        profile=ProfileService(
            session,
            uow,
            verifier,
            delivery,
            hasher,
            password_policy,
            throttle,
            sessions,
            tokens,
            settings.issuer,
            clock,
            audit=audit,
        ),
        cabinet=CabinetService(
            linking or _no_linking,
            tokens,
            settings.resources[0] if settings.resources else LINKING_RESOURCE,
        ),
        social=social,
        social_proof=SocialProofService(
            session,
            uow,
            verifier,
            delivery,
            auth.authenticate,
            social.link_in_transaction,
            settings.issuer,
            clock,
        ),
        auto_attach=auto_attach,
        audit=audit,
        support=SupportService(
            session, uow, users, sessions, logout, tokens, throttle, audit, clock
        ),
        housekeeping=HousekeepingService(
            SqlHousekeeping(session),
            SqlAuditLog(session),
            uow,
            Retention(
                audit_days=settings.audit_retention_days,
                outbox_days=settings.outbox_retention_days,
            ),
            clock,
        ),
    )


def _no_linking() -> LinkingClient:
    from idp.adapters.linking_grpc import RecordingLinkingClient

    return RecordingLinkingClient()

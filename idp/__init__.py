"""ЕЛК identity provider: the composition root.

``create_app`` reads settings, picks adapters for the ports, builds the services and the
authorization server, and registers the blueprints. Nothing is built at import time.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from idp.config import Settings, load_settings

MIGRATIONS_DIR = str(Path(__file__).parent / "migrations")


def _store(settings: Settings):
    if settings.redis_url:
        from idp.adapters.store_redis import RedisStore

        return RedisStore(settings.redis_url, settings.redis_prefix)
    from idp.adapters.store_memory import MemoryStore

    return MemoryStore()


def _senders(settings: Settings, session):
    """The SMS and e-mail adapters: the real ones when configured, else the dev outbox."""
    from idp.adapters.email_smtp import SmtpEmailSender
    from idp.adapters.outbox import OutboxEmailSender, OutboxSmsSender
    from idp.adapters.sms_http import HttpSmsSender

    if settings.sms_gateway_url:
        sms = HttpSmsSender(
            settings.sms_gateway_url,
            username=settings.sms_gateway_user,
            password=settings.sms_gateway_password,
            token=settings.sms_gateway_token,
            body=settings.sms_gateway_body,
        )
    else:
        sms = OutboxSmsSender(session)
    if settings.smtp_host:
        email = SmtpEmailSender(
            settings.smtp_host,
            settings.smtp_port,
            username=settings.smtp_user,
            password=settings.smtp_password,
            security=settings.smtp_security,
            sender=settings.mail_from,
        )
    else:
        email = OutboxEmailSender(session)
    return sms, email


def _waker(settings: Settings, store):
    """Redis carries wake-ups across processes; without it, a worker in this process is woken
    directly and one in another process polls."""
    from idp.adapters.store_redis import RedisStore
    from idp.adapters.wake import LocalWaker, RedisWaker

    if settings.redis_url:
        return RedisWaker(settings.redis_url, settings.redis_prefix)
    if isinstance(store, RedisStore):
        return RedisWaker(store.url, store.prefix)
    return LocalWaker()


def _linking(settings: Settings, services):
    """The linking service client at "account confirmed", or a no-op twin when unset."""
    from idp.adapters.linking_grpc import (
        GrpcLinkingClient,
        RecordingLinkingClient,
        tls_credentials,
    )

    if not settings.linking_target or not settings.resources:
        return RecordingLinkingClient()
    resource = settings.resources[0]
    credentials = None
    if settings.linking_tls_ca:
        credentials = tls_credentials(
            settings.linking_tls_ca, settings.linking_tls_cert, settings.linking_tls_key
        )
    return GrpcLinkingClient(
        settings.linking_target,
        lambda: services.tokens.service_token("linking:auto", resource),
        credentials=credentials,
    )


def create_app(
    settings: Settings | None = None,
    notifier=None,
    store=None,
    clock=time.time,
    sms=None,
    email=None,
    captcha_renderer=None,
    linking=None,
    waker=None,
    social_providers=None,
    metrics=None,
) -> Flask:
    """Build the app. Tests may pass their own store, senders, notifier, clock, metrics and
    social providers (by name). The senders and the notifier are used by the outbox worker
    (:func:`build_worker`) only."""
    settings = settings or load_settings()
    if settings.issuer.startswith("http://"):
        # Authlib refuses plain HTTP unless told; load_settings allows it only on loopback.
        os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"

    from idp.adapters.logout_http import HttpLogoutNotifier
    from idp.adapters.metrics import PrometheusMetrics, instrument_pool
    from idp.adapters.social import build_social_providers
    from idp.adapters.sql.pool import ping_when_idle
    from idp.extensions import csrf, db, migrate
    from idp.oidc.server import OIDCServer
    from idp.services.container import build_services
    from idp.web import register_web, request_context

    app = Flask(__name__, template_folder="web/templates", static_folder="web/static")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        # hide_parameters: a database error's text (logged) never carries the row's values.
        # No pool_pre_ping: idp/adapters/sql/pool.py pings only connections left idle.
        SQLALCHEMY_ENGINE_OPTIONS={"hide_parameters": True},
        MAX_CONTENT_LENGTH=64 * 1024,
        SESSION_COOKIE_NAME="__Host-elk_csrf" if settings.secure_cookies else "elk_csrf",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=False,
        JSON_AS_ASCII=False,
        PREFERRED_URL_SCHEME="https" if settings.secure_cookies else "http",
    )
    app.json.ensure_ascii = False
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(
            app.wsgi_app,
            x_for=settings.trusted_proxies,
            x_proto=settings.trusted_proxies,
            x_host=settings.trusted_proxies,
        )

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS_DIR)
    csrf.init_app(app)

    store = store or _store(settings)
    notifier = notifier or HttpLogoutNotifier(settings.backchannel_logout_timeout)
    default_sms, default_email = _senders(settings, db.session)
    if captcha_renderer is None:
        from idp.adapters.captcha_image import ImageCaptchaRenderer

        captcha_renderer = ImageCaptchaRenderer()
    metrics = metrics or PrometheusMetrics()
    with app.app_context():
        instrument_pool(db.engine)
        ping_when_idle(db.engine)
        services = build_services(
            settings,
            db.session,
            store,
            waker or _waker(settings, store),
            captcha_renderer,
            clock,
            linking=lambda: app.extensions["idp.linking"],
            social_providers=(
                build_social_providers(settings) if social_providers is None else social_providers
            ),
            metrics=metrics,
            request_context=request_context,
        )
        server = OIDCServer(app, settings, services, store)
    app.extensions["idp.linking"] = linking or _linking(settings, services)
    app.extensions["idp.senders"] = (sms or default_sms, email or default_email, notifier)
    app.extensions["idp.settings"] = settings
    app.extensions["idp.metrics"] = metrics
    app.extensions["idp.services"] = services
    app.extensions["idp.server"] = server
    register_web(app)
    # SQLAlchemy configures the mappers at their first use, i.e. in the first request of each
    # worker (15 % of a fresh worker's first sign-ins in a profile): done here, once.
    from sqlalchemy.orm import configure_mappers

    configure_mappers()
    return app


def build_worker(app: Flask, policy=None, poll: float = 0.5):
    """The outbox worker of ``app`` (``idp worker``, and the tests' live servers): the real
    senders chosen by :func:`create_app`, each lane in its own application context."""
    from idp.adapters.sql.outbox import OutboxQueue
    from idp.extensions import db
    from idp.services.outbox_worker import OutboxWorker

    services = app.extensions["idp.services"]
    sms, email, notifier = app.extensions["idp.senders"]
    return OutboxWorker(
        OutboxQueue(db.session, services.clock),
        sms,
        email,
        notifier,
        services.logout.logout_token,
        services.channels,
        services.outbox.waker,
        policy=policy,
        metrics=app.extensions["idp.metrics"],
        poll=poll,
        clock=services.clock,
        thread_context=app.app_context,
    )

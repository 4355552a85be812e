"""HTTP edge: blueprints parse input, call one service, render."""

from __future__ import annotations

from flask import Flask, current_app, has_request_context, request

from idp.config import Settings
from idp.domain.audit import RequestContext
from idp.services.container import Services


def services() -> Services:
    return current_app.extensions["idp.services"]


def settings() -> Settings:
    return current_app.extensions["idp.settings"]


def metrics():
    """The :class:`~idp.ports.Metrics` of the app."""
    return current_app.extensions["idp.metrics"]


def server():
    return current_app.extensions["idp.server"]


def client_address() -> str:
    """The caller's address; X-Forwarded-For counts only through ProxyFix (trusted hops)."""
    return request.remote_addr or "unknown"


def request_context() -> RequestContext:
    """The audit trail's view of the current request: address and user agent."""
    if not has_request_context():
        return RequestContext()
    return RequestContext(client_address(), request.headers.get("User-Agent"))


def register_web(app: Flask) -> None:
    from idp.extensions import csrf
    from idp.web import (
        account,
        attach,
        auth,
        dev,
        discovery,
        errors,
        filters,
        health,
        i18n,
        legal,
        oauth,
        observability,
        profile,
        recover,
        register,
        security,
        social,
    )

    observability.init_app(app)  # first: the request id exists for every other hook
    security.init_app(app)
    errors.init_app(app)
    i18n.init_app(app)
    filters.init_app(app)
    blueprints = (
        discovery,
        health,
        oauth,
        auth,
        account,
        attach,
        register,
        recover,
        profile,
        social,
        legal,
        dev,
    )
    for module in blueprints:
        app.register_blueprint(module.bp)
    security.init_sessions(app)
    for view in (
        oauth.authorize,
        oauth.token,
        oauth.revoke,
        oauth.introspect,
        oauth.userinfo,
        oauth.end_session,
    ):
        csrf.exempt(view)

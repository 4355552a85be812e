"""Errors mapped once to responses: JSON for API paths, a page in the user's language for
people."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext, lazy_gettext
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from idp.domain.errors import IdpError, NotFound, SigningKeyMissing, Throttled
from idp.ports import DeliveryFailed, StoreUnavailable
from idp.services.delivery import SmsRefused

log = logging.getLogger(__name__)

API_PREFIXES = (
    "/token",
    "/userinfo",
    "/revoke",
    "/introspect",
    "/jwks.json",
    "/.well-known",
    "/readyz",
    "/healthz",
)

MESSAGES = {
    400: lazy_gettext("Некорректный запрос."),
    403: lazy_gettext("Запрос отклонён. Обновите страницу и попробуйте ещё раз."),
    404: lazy_gettext("Страница не найдена."),
    405: lazy_gettext("Метод не поддерживается."),
    413: lazy_gettext("Слишком большой запрос."),
    429: lazy_gettext("Слишком много попыток. Попробуйте позже."),
    500: lazy_gettext("Внутренняя ошибка. Попробуйте позже."),
    503: lazy_gettext("Сервис временно недоступен. Попробуйте позже."),
}

OAUTH_ERRORS = {
    400: "invalid_request",
    405: "invalid_request",
    413: "invalid_request",
    429: "slow_down",
    500: "server_error",
    503: "temporarily_unavailable",
}


def render_error(status: int, detail: str | None = None, headers: dict | None = None):
    if request.path.startswith(API_PREFIXES):
        body = {"error": OAUTH_ERRORS.get(status, "invalid_request")}
        if detail:
            body["error_description"] = detail
        response = jsonify(body)
    else:
        response = render_template(
            "error.html",
            status=status,
            message=str(MESSAGES.get(status, MESSAGES[400])),
            detail=detail,
        )
    return response, status, headers or {}


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc):
        return render_error(403)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return render_error(exc.code or 500)

    @app.errorhandler(StoreUnavailable)
    def store_down(exc):
        log.error("ephemeral store unavailable: %s", exc)
        return render_error(503, headers={"Retry-After": "5"})

    @app.errorhandler(DBAPIError)
    def database_error(exc: DBAPIError):
        # Unreachable, restarting or failing over: the pool reconnects (pool_pre_ping) on a
        # later request. Only the class is logged: the driver's text may name the host.
        if isinstance(exc, OperationalError | InterfaceError) or exc.connection_invalidated:
            log.error("database unavailable: %s", type(exc.orig or exc).__name__)
            return render_error(503, headers={"Retry-After": "5"})
        log.exception("database error")
        return render_error(500)

    @app.errorhandler(PoolTimeout)
    def pool_exhausted(exc):
        log.error("database pool exhausted: no connection within the pool timeout")
        return render_error(503, headers={"Retry-After": "5"})

    @app.errorhandler(Throttled)
    def throttled(exc: Throttled):
        return render_error(429, headers={"Retry-After": str(exc.retry_after)})

    @app.errorhandler(SmsRefused)
    def sms_refused(exc):
        status = 400 if exc.retry_after is None else 429
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        message = gettext("Отправка SMS на этот номер сейчас невозможна.")
        return render_error(status, message, headers)

    @app.errorhandler(DeliveryFailed)
    def delivery_failed(exc):
        log.error("delivery failed: %s", exc)
        return render_error(503, gettext("Не удалось отправить сообщение."), {"Retry-After": "30"})

    @app.errorhandler(SigningKeyMissing)
    def no_signing_key(exc: SigningKeyMissing):
        # An operator's omission, not a bug: say what to run, answer 503 (RFC 6749 §5.2
        # has no code for "try later" at the token endpoint, so server_error) and no trace.
        log.error("cannot sign tokens: %s", exc)
        headers = {"Retry-After": "30"}
        if request.path.startswith(API_PREFIXES):
            body = {"error": "server_error", "error_description": "No signing key is available."}
            return jsonify(body), 503, headers
        return render_error(503, headers=headers)

    @app.errorhandler(NotFound)
    def flow_not_found(exc):
        return render_error(404, gettext("Сеанс истёк или не найден. Начните заново."))

    @app.errorhandler(IdpError)
    def domain_error(exc):
        return render_error(400)

    @app.errorhandler(Exception)
    def unexpected(exc):
        log.exception("unhandled error")
        return render_error(500)

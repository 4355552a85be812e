"""The SSO session cookie: ``__Host-`` prefixed and Secure when served over https."""

from __future__ import annotations

from flask import request

from idp.web import services, settings


def cookie_name() -> str:
    return "__Host-elk_sso" if settings().secure_cookies else "elk_sso"


def current_session():
    return services().sessions.current(request.cookies.get(cookie_name()))


def set_session_cookie(response, opened) -> None:
    response.set_cookie(
        cookie_name(),
        opened.cookie_value,
        max_age=opened.max_age,
        path="/",
        secure=settings().secure_cookies,
        httponly=True,
        samesite="Lax",
    )


def clear_session_cookie(response) -> None:
    response.delete_cookie(
        cookie_name(), path="/", secure=settings().secure_cookies, httponly=True, samesite="Lax"
    )

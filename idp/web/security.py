"""Security headers on every response and a same-origin check on every form POST."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, abort, request

from idp.web import settings

# Endpoints called by clients, not by browsers submitting our forms (no CSRF token there).
API_ENDPOINTS = {
    "oauth.token",
    "oauth.userinfo",
    "oauth.revoke",
    "oauth.introspect",
    "oauth.authorize",
    "oauth.end_session",
}

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self' {actions}; frame-ancestors 'none'; base-uri 'none'"
)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def check_same_origin() -> None:
    """Refuse cross-site form posts before CSRF tokens are even looked at (checklist 36)."""
    if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
        return
    if request.endpoint in API_ENDPOINTS:
        return
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site in ("cross-site", "same-site"):
        abort(403)
    origin = request.headers.get("Origin")
    if origin is None or origin == _origin(settings().issuer):
        return
    # Our pages send Referrer-Policy: no-referrer, so browsers post with "Origin: null";
    # accept it only when the browser itself vouches that the request is same-origin.
    if origin == "null" and fetch_site == "same-origin":
        return
    abort(403)


def set_headers(response):
    headers = response.headers
    # form-action must allow the redirect that follows a form post (to client redirect URIs).
    headers.setdefault(
        "Content-Security-Policy",
        CSP.format(actions="https: http://127.0.0.1:* http://localhost:*"),
    )
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if settings().secure_cookies:
        headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
    if response.mimetype == "text/html" or request.endpoint in API_ENDPOINTS:
        headers.setdefault("Cache-Control", "no-store")
    return response


def init_app(app: Flask) -> None:
    app.before_request(check_same_origin)
    app.after_request(set_headers)

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


# form-action must allow the redirect that follows a form post (to client redirect URIs).
HEADERS = (
    ("Content-Security-Policy", CSP.format(actions="https: http://127.0.0.1:* http://localhost:*")),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Permissions-Policy", "camera=(), microphone=(), geolocation=()"),
)
HSTS = ("Strict-Transport-Security", "max-age=63072000; includeSubDomains")


def set_headers(response):
    """Each header unless the view set its own. One pass over the response's headers, not one
    per header (werkzeug's setdefault scans the list each time): this runs on every request."""
    headers = response.headers
    present = {name.lower() for name, _ in headers.items()}
    wanted = HEADERS + ((HSTS,) if settings().secure_cookies else ())
    if response.mimetype == "text/html" or request.endpoint in API_ENDPOINTS:
        wanted += (("Cache-Control", "no-store"),)
    headers.extend([(name, value) for name, value in wanted if name.lower() not in present])
    return response


def init_app(app: Flask) -> None:
    app.before_request(check_same_origin)
    app.after_request(set_headers)

"""Security headers on every response; a same-origin check and the CSRF token on every form
POST; and no browser machinery (cookie session, CSRF, locale) on the JSON endpoints."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, abort, current_app, request
from flask.sessions import SecureCookieSessionInterface

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

# Endpoints that answer JSON to programs, never a page to a browser: they neither read nor
# write the Flask session cookie (Flask-WTF's CSRF token lives there), render nothing, and need
# no locale. Each is a fixed path; security headers still go on every response.
JSON_ENDPOINTS = frozenset(
    {
        "discovery.openid_configuration",
        "discovery.oauth_metadata",
        "discovery.jwks",
        "health.healthz",
        "health.readyz",
        "oauth.token",
        "oauth.userinfo",
        "oauth.revoke",
        "oauth.introspect",
    }
)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self' {actions}; frame-ancestors 'none'; base-uri 'none'"
)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def check_form_post() -> None:
    """Refuse cross-site form posts before CSRF tokens are even looked at (checklist 36),
    then check the form's CSRF token (Flask-WTF; its own hook is off, WTF_CSRF_CHECK_DEFAULT,
    so that a GET or an API call does not pay for it)."""
    if request.method not in ("POST", "PUT", "PATCH", "DELETE"):
        return
    if request.endpoint in API_ENDPOINTS:
        return
    check_same_origin()
    if current_app.config["WTF_CSRF_ENABLED"]:
        from idp.extensions import csrf

        csrf.protect(apply_exemptions=True)


def check_same_origin() -> None:
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


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, not opened on the JSON endpoints' paths (a null session:
    nothing read, nothing written, no ``Vary: Cookie``), and with its signer built once per
    secret instead of once per request."""

    def __init__(self, json_paths: frozenset[str]) -> None:
        self.json_paths = json_paths
        self._signers: dict = {}

    def get_signing_serializer(self, app):
        key = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        signer = self._signers.get(key)
        if signer is None:
            signer = self._signers[key] = super().get_signing_serializer(app)
        return signer

    def open_session(self, app, request):
        if request.path in self.json_paths:
            return self.make_null_session(app)
        return super().open_session(app, request)


def json_paths(app: Flask) -> frozenset[str]:
    """The paths of :data:`JSON_ENDPOINTS` (rules without variables, all of them)."""
    rules = [rule for rule in app.url_map.iter_rules() if rule.endpoint in JSON_ENDPOINTS]
    if any(rule.arguments for rule in rules):
        raise RuntimeError("a JSON endpoint's path must be fixed (no variables)")
    return frozenset(rule.rule for rule in rules)


def init_app(app: Flask) -> None:
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False  # check_form_post calls it on form posts
    app.before_request(check_form_post)
    app.after_request(set_headers)


def init_sessions(app: Flask) -> None:
    """After every blueprint is registered: the JSON endpoints' paths are known then."""
    app.session_interface = SessionInterface(json_paths(app))

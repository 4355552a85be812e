"""The JSON endpoints skip the browser machinery (cookie session, CSRF, locale) and keep the
security headers; the request id stays a random UUID."""

from __future__ import annotations

import uuid

import requests
from flask.sessions import NullSession

from elk_common.logjson import new_request_id
from idp.web.security import JSON_ENDPOINTS, SessionInterface
from tests.support import make_client

HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options")


def test_the_token_endpoint_sets_no_session_cookie_and_carries_the_headers(live):
    client = make_client(live, grant_types=["client_credentials"], scopes=["linking:read"])
    http = requests.Session()
    http.get(f"{live.url}/login", timeout=10)  # a browser's CSRF session cookie, sent along
    assert http.cookies, "the login page opens a session"
    response = http.post(
        f"{live.url}/token",
        data={"grant_type": "client_credentials", "scope": "linking:read"},
        auth=(client.client_id, client.secret),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert "Set-Cookie" not in response.headers
    assert "Cookie" not in response.headers.get("Vary", "")
    for name in HEADERS:
        assert name in response.headers, name
    assert "no-store" in response.headers["Cache-Control"]
    for path in ("/.well-known/openid-configuration", "/jwks.json", "/healthz"):
        answer = http.get(live.url + path, timeout=10)
        assert answer.status_code == 200 and "Set-Cookie" not in answer.headers, path
        assert all(name in answer.headers for name in HEADERS), path


def test_only_the_json_endpoints_go_without_a_session(live):
    app = live.app
    interface = app.session_interface
    assert isinstance(interface, SessionInterface)
    paths = {r.rule for r in app.url_map.iter_rules() if r.endpoint in JSON_ENDPOINTS}
    assert {"/token", "/userinfo", "/jwks.json", "/healthz"} <= paths == interface.json_paths
    for path in paths:
        with app.test_request_context(path, method="POST"):
            from flask import request

            assert isinstance(interface.open_session(app, request), NullSession), path
    for path in ("/login", "/authorize", "/logout", "/account", "/register"):
        with app.test_request_context(path):
            from flask import request

            assert not isinstance(interface.open_session(app, request), NullSession), path


def test_a_form_post_without_its_csrf_token_is_still_refused(live):
    """Flask-WTF's own hook is off (WTF_CSRF_CHECK_DEFAULT); the form-post check calls it."""
    assert live.app.config["WTF_CSRF_CHECK_DEFAULT"] is False
    response = requests.post(
        f"{live.url}/login", data={"login": "+79990000000", "password": "x"}, timeout=10
    )
    assert response.status_code == 403


def test_request_ids_are_random_version_4_uuids():
    ids = {new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    for value in ids:
        parsed = uuid.UUID(value)
        assert str(parsed) == value and parsed.version == 4 and parsed.variant == uuid.RFC_4122

"""Bad input gets the error the specification names: never a 500, never a stack trace."""

from __future__ import annotations

import pytest
import requests

from tests.support import make_client, pkce_pair

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JUNK = "\x00\u202e<script>" + "я" * 3000


def _requests(client_id: str, secret: str):
    auth = (client_id, secret)
    long_state = "s" * 5000
    return [
        ("get", "/authorize", {"params": {"client_id": JUNK, "response_type": "code"}}),
        (
            "get",
            "/authorize",
            {
                "params": {
                    "client_id": client_id,
                    "response_type": "code",
                    "redirect_uri": "https://rp.example.com/cb",
                    "scope": "openid",
                    "max_age": "9" * 40,
                    "state": long_state,
                }
            },
        ),
        ("get", "/authorize", {"params": {"client_id": [client_id, client_id]}}),
        ("post", "/authorize", {"data": {"client_id": client_id, "response_type": JUNK}}),
        ("post", "/token", {"json": {"grant_type": "authorization_code"}}),
        (
            "post",
            "/token",
            {
                "data": b"\xff\xfe garbage",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            },
        ),
        (
            "post",
            "/token",
            {
                "auth": auth,
                "data": {"grant_type": "authorization_code", "code": JUNK, "code_verifier": JUNK},
            },
        ),
        (
            "post",
            "/token",
            {"auth": auth, "data": {"grant_type": "refresh_token", "refresh_token": JUNK}},
        ),
        (
            "post",
            "/token",
            {"auth": auth, "data": {"grant_type": "client_credentials", "resource": JUNK}},
        ),
        (
            "post",
            "/token",
            {
                "headers": {"Authorization": "Basic !!!notbase64"},
                "data": {"grant_type": "client_credentials"},
            },
        ),
        (
            "post",
            "/token",
            {
                "data": {
                    "grant_type": "client_credentials",
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": "a.b.c",
                }
            },
        ),
        ("get", "/token", {}),
        ("post", "/token", {"data": {"grant_type": JUNK}}),
        ("post", "/token", {"auth": auth, "data": {"grant_type": JUNK}}),
        ("post", "/revoke", {"auth": auth, "data": {"token": "x", "token_type_hint": JUNK}}),
        ("post", "/introspect", {"auth": auth, "data": {"token": "x", "token_type_hint": JUNK}}),
        ("get", "/userinfo", {"headers": {"Authorization": "Bearer " + "x" * 5000}}),
        ("get", "/userinfo", {"headers": {"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."}}),
        ("post", "/userinfo", {"data": {"access_token": JUNK}}),
        ("post", "/revoke", {"auth": auth, "data": {"token": JUNK, "token_type_hint": "bogus"}}),
        ("post", "/introspect", {"auth": auth, "data": {}}),
        (
            "get",
            "/logout",
            {"params": {"id_token_hint": JUNK, "post_logout_redirect_uri": "https://evil.example"}},
        ),
        ("get", "/logout", {"params": {"post_logout_redirect_uri": "https://evil.example"}}),
        ("get", "/authorize/resume/" + "x" * 500, {}),
        ("get", "/consent/nope", {}),
        ("get", "/login", {"params": {"interaction": JUNK}}),
        ("post", "/login", {"data": {"login": JUNK, "password": JUNK}}),
        ("get", "/no-such-page", {}),
    ]


def test_no_bad_request_causes_a_server_error(live):
    client = make_client(live)
    for method, path, kwargs in _requests(client.client_id, client.secret):
        response = getattr(requests, method)(
            live.url + path, timeout=10, allow_redirects=False, **kwargs
        )
        assert response.status_code < 500, (method, path, response.status_code)
        assert "Traceback" not in response.text, (method, path)
        assert 'File "' not in response.text, (method, path)


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        ("/token", 400, "unsupported_grant_type"),  # RFC 6749 §5.2: the grant type comes first
        ("/revoke", 401, "invalid_client"),  # RFC 7009 §2.1: the caller must be a client
        ("/introspect", 401, "invalid_client"),  # RFC 7662 §2.1: and an authenticated one
    ],
)
def test_api_errors_are_json_with_an_oauth_error_code(live, path, status, error):
    response = requests.post(live.url + path, data={"grant_type": "nope", "token": "x"}, timeout=5)
    assert response.headers["Content-Type"].startswith("application/json")
    assert (response.status_code, response.json()["error"]) == (status, error)


def test_an_unverified_redirect_uri_never_receives_the_error(live):
    client = make_client(live)
    _, challenge = pkce_pair()
    response = requests.get(
        f"{live.url}/authorize",
        allow_redirects=False,
        timeout=5,
        params={
            "client_id": client.client_id,
            "response_type": "token",
            "redirect_uri": "https://evil.example/cb",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "scope": "openid",
        },
    )
    assert response.status_code == 400 and "Location" not in response.headers

"""The whole code flow over real HTTP, driven by an independent client library (Authlib's
OAuth2Session) with ID tokens validated by joserfc against the published JWK Set."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.support import PASSWORD, make_client, make_user, sign_in_and_authorize


def discover(live):
    meta = requests.get(f"{live.url}/.well-known/openid-configuration", timeout=5).json()
    jwks = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=5).json())
    return meta, jwks


def validate_id_token(token: str, jwks: KeySet, issuer: str, client_id: str, nonce: str | None):
    """OIDC Core §3.1.3.7 done by the relying party."""
    decoded = jwt.decode(token, jwks, algorithms=["ES256", "RS256"])
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": issuer},
        aud={"essential": True, "value": client_id},
        exp={"essential": True},
        iat={"essential": True},
        sub={"essential": True},
    )
    registry.validate(decoded.claims)
    assert decoded.claims.get("nonce") == nonce
    assert decoded.header["kid"]
    return decoded


def at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode()).digest()[:16]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def run_code_flow(
    live,
    client,
    login,
    *,
    scope="openid profile email phone offline_access",
    auth_method="client_secret_basic",
    extra_session=None,
):
    meta, jwks = discover(live)
    rp = OAuth2Session(
        client.client_id,
        client.secret,
        scope=scope,
        redirect_uri=client.redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method=auth_method,
    )
    code_verifier = generate_token(64)
    nonce = generate_token(16)
    url, state = rp.create_authorization_url(
        meta["authorization_endpoint"], code_verifier=code_verifier, nonce=nonce
    )
    browser = extra_session or requests.Session()
    response = sign_in_and_authorize(browser, live, url, login, PASSWORD)
    callback = response.headers["Location"]
    token = rp.fetch_token(
        meta["token_endpoint"],
        authorization_response=callback,
        code_verifier=code_verifier,
        state=state,
    )
    return meta, jwks, rp, token, nonce, browser


def test_discovery_document_describes_a_strict_provider(live):
    meta, jwks = discover(live)
    assert meta["issuer"] == live.url
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert "password" not in meta["grant_types_supported"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    algs = {key.alg for key in jwks.keys}
    assert algs == {"ES256", "RS256"}
    assert all(key.kid for key in jwks.keys)


def test_full_code_flow_with_pkce_refresh_userinfo_revocation_introspection(live):
    client = make_client(live)
    sub, login = make_user(live, middle_name="Сергеевич", family_name="Ёлкин")
    meta, jwks, rp, token, nonce, _ = run_code_flow(live, client, login)

    assert token["token_type"].lower() == "bearer"
    assert "refresh_token" in token
    id_token = validate_id_token(token["id_token"], jwks, live.url, client.client_id, nonce)
    claims = id_token.claims
    assert claims["sub"] == sub
    assert claims["at_hash"] == at_hash(token["access_token"])
    assert claims["amr"] == ["pwd"] and claims["acr"] == "urn:elk:loa:1"
    assert isinstance(claims["auth_time"], int) and claims["sid"]
    assert claims["family_name"] == "Ёлкин" and claims["middle_name"] == "Сергеевич"
    assert id_token.header["alg"] == "ES256"

    # The access token is an RFC 9068 JWT.
    access = jwt.decode(token["access_token"], jwks, algorithms=["ES256", "RS256"])
    assert access.header["typ"] == "at+jwt"
    assert access.claims["client_id"] == client.client_id
    assert access.claims["aud"] == live.url and access.claims["sub"] == sub
    assert "openid" in access.claims["scope"].split()

    # userinfo, GET and POST
    info = rp.get(meta["userinfo_endpoint"]).json()
    assert info["sub"] == sub and info["phone_number"] == login
    assert info["phone_number_verified"] is True
    assert info["name"] == "Ёлкин Иван Сергеевич"
    posted = requests.post(
        meta["userinfo_endpoint"], data={"access_token": token["access_token"]}, timeout=5
    ).json()
    assert posted == info

    # refresh rotation: a new refresh token each time; the ID token keeps auth_time.
    refreshed = rp.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    new_id = validate_id_token(refreshed["id_token"], jwks, live.url, client.client_id, None)
    assert new_id.claims["auth_time"] == claims["auth_time"]

    auth = (client.client_id, client.secret)
    # introspection (authenticated clients only)
    active = requests.post(
        meta["introspection_endpoint"],
        auth=auth,
        data={"token": refreshed["access_token"]},
        timeout=5,
    ).json()
    assert active["active"] is True and active["sub"] == sub
    assert active["client_id"] == client.client_id
    anonymous = requests.post(
        meta["introspection_endpoint"], data={"token": refreshed["access_token"]}, timeout=5
    )
    assert anonymous.status_code == 401

    # revocation of the refresh token ends the family, its access tokens with it
    revoked = requests.post(
        meta["revocation_endpoint"],
        auth=auth,
        data={"token": refreshed["refresh_token"], "token_type_hint": "refresh_token"},
        timeout=5,
    )
    assert revoked.status_code == 200
    after = requests.post(
        meta["introspection_endpoint"],
        auth=auth,
        data={"token": refreshed["access_token"]},
        timeout=5,
    ).json()
    assert after == {"active": False}
    denied = requests.get(
        meta["userinfo_endpoint"],
        timeout=5,
        headers={"Authorization": f"Bearer {refreshed['access_token']}"},
    )
    assert denied.status_code == 401
    assert 'error="invalid_token"' in denied.headers["WWW-Authenticate"]
    again = requests.post(
        meta["token_endpoint"],
        auth=auth,
        timeout=5,
        data={"grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"]},
    )
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_public_client_with_pkce_and_client_secret_post(live):
    public = make_client(live, public=True, redirect_uris=["http://127.0.0.1:7000/cb"])
    _, login = make_user(live)
    _, jwks, _, token, nonce, _ = run_code_flow(
        live, public, login, scope="openid", auth_method="none"
    )
    validate_id_token(token["id_token"], jwks, live.url, public.client_id, nonce)
    assert "refresh_token" not in token  # no offline_access asked

    post_client = make_client(live, auth_method="client_secret_post")
    _, _, _, token, _, _ = run_code_flow(
        live, post_client, login, scope="openid email", auth_method="client_secret_post"
    )
    assert token["access_token"]


def test_rs256_client_gets_rs256_id_tokens(live):
    client = make_client(live, id_token_alg="RS256")
    _, login = make_user(live)
    _, jwks, _, token, nonce, _ = run_code_flow(live, client, login, scope="openid")
    decoded = validate_id_token(token["id_token"], jwks, live.url, client.client_id, nonce)
    assert decoded.header["alg"] == "RS256"


def test_rp_initiated_and_back_channel_logout(live):
    client = make_client(
        live,
        post_logout_redirect_uris=["https://rp.example.com/bye"],
        backchannel_logout_uri="https://rp.example.com/backchannel",
    )
    sub, login = make_user(live)
    meta, jwks, rp, token, _, browser = run_code_flow(live, client, login)
    response = browser.get(
        meta["end_session_endpoint"],
        allow_redirects=False,
        params={
            "id_token_hint": token["id_token"],
            "post_logout_redirect_uri": "https://rp.example.com/bye",
            "state": "s1",
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "https://rp.example.com/bye?state=s1"
    # the back-channel logout token went to the RP (by the outbox worker), signed and typed
    live.drain()
    assert len(live.notifier.sent) == 1
    uri, logout_token = live.notifier.sent[0]
    assert uri == "https://rp.example.com/backchannel"
    decoded = jwt.decode(logout_token, jwks, algorithms=["ES256"])
    assert decoded.header["typ"] == "logout+jwt"
    assert decoded.claims["sub"] == sub and decoded.claims["aud"] == client.client_id
    assert "http://schemas.openid.net/event/backchannel-logout" in decoded.claims["events"]
    assert "nonce" not in decoded.claims
    # tokens of the ended session no longer work
    refresh = requests.post(
        meta["token_endpoint"],
        auth=(client.client_id, client.secret),
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        timeout=5,
    )
    assert refresh.json()["error"] == "invalid_grant"
    # and the browser must sign in again: a valid authorization request (which would have
    # redirected straight to the client with a code before the logout) goes to the login page
    url, _ = rp.create_authorization_url(
        meta["authorization_endpoint"],
        code_verifier=generate_token(64),
        nonce=generate_token(16),
    )
    again = browser.get(url, allow_redirects=False)
    assert again.status_code == 303, again.text[:300]
    location = urlsplit(again.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["interaction"][0]


def test_client_credentials_for_internal_services(live):
    service = make_client(
        live,
        grant_types=["client_credentials"],
        redirect_uris=[],
        scopes=["linking:read"],
        first_party=True,
    )
    meta, jwks = discover(live)
    response = requests.post(
        meta["token_endpoint"],
        auth=(service.client_id, service.secret),
        data={
            "grant_type": "client_credentials",
            "scope": "linking:read",
            "resource": "urn:elk:linking-service",
        },
        timeout=5,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body and "id_token" not in body
    claims = jwt.decode(body["access_token"], jwks, algorithms=["ES256"]).claims
    assert claims["sub"] == service.client_id and claims["aud"] == "urn:elk:linking-service"
    assert claims["scope"] == "linking:read"
    # user scopes are not for client credentials
    bad = requests.post(
        meta["token_endpoint"],
        auth=(service.client_id, service.secret),
        data={"grant_type": "client_credentials", "scope": "openid"},
        timeout=5,
    )
    assert bad.json()["error"] == "invalid_scope"


def client_assertion(
    key, alg: str, client_id: str, audience: str, jti: str | None = None, **overrides
) -> str:
    """An RFC 7523 §3 client assertion, built by hand with joserfc."""
    import secrets
    import time

    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": audience,
        "iat": now,
        "exp": now + 60,
        "jti": jti or secrets.token_urlsafe(12),
    }
    claims.update(overrides)
    return jwt.encode({"alg": alg, "kid": "k1"}, claims, key, algorithms=[alg])


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_private_key_jwt_client_authentication(live, alg):
    from joserfc.jwk import ECKey, RSAKey

    key = ECKey.generate_key("P-256") if alg == "ES256" else RSAKey.generate_key(2048)
    key_dict = {**key.as_dict(private=False), "kid": "k1", "alg": alg}
    service = make_client(
        live,
        grant_types=["client_credentials"],
        redirect_uris=[],
        scopes=["linking:read"],
        jwks={"keys": [key_dict]},
        auth_method="private_key_jwt",
    )
    meta, _ = discover(live)
    assertion = client_assertion(key, alg, service.client_id, meta["token_endpoint"])
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion,
    }
    first = requests.post(meta["token_endpoint"], data=form, timeout=5)
    assert first.status_code == 200, first.text
    # the same assertion (same jti) cannot be replayed
    replay = requests.post(meta["token_endpoint"], data=form, timeout=5)
    assert replay.status_code == 401 and replay.json()["error"] == "invalid_client"
    # an assertion for another audience is refused
    form["client_assertion"] = client_assertion(
        key, alg, service.client_id, "https://elsewhere.example"
    )
    assert requests.post(meta["token_endpoint"], data=form, timeout=5).status_code == 401
    # and so is one signed with a key that is not the client's
    other = ECKey.generate_key("P-256")
    form["client_assertion"] = client_assertion(
        other, "ES256", service.client_id, meta["token_endpoint"]
    )
    assert requests.post(meta["token_endpoint"], data=form, timeout=5).status_code == 401

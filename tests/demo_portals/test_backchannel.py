"""The portals' back-channel logout (OIDC Back-Channel Logout 1.0 §2.6, §2.8): every check of
the logout token refuses on its own, and the endpoint ends exactly the sessions of the ``sid``."""

from __future__ import annotations

import time

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, OctKey

from demo_portals import create_app
from demo_portals.backchannel import (
    BACKCHANNEL_EVENT,
    LogoutTokenInvalid,
    LogoutTokenVerifier,
)
from demo_portals.config import load_settings
from demo_portals.sessions import PortalSession, SessionStore

ISSUER = "https://id.example.ru"
CLIENT = "demo-shop"


class Jwks:
    """The IdP's published keys, recording each fetch (``force`` = refetch after rotation)."""

    def __init__(self, *keys) -> None:
        self.keys = list(keys)
        self.fetches: list[bool] = []

    def __call__(self, force: bool) -> dict:
        self.fetches.append(force)
        return KeySet(self.keys).as_dict(private=False)


@pytest.fixture
def key():
    return ECKey.generate_key("P-256", parameters={"kid": "k1"})


@pytest.fixture
def jwks(key):
    return Jwks(key)


@pytest.fixture
def verifier(jwks):
    return LogoutTokenVerifier(ISSUER, CLIENT, jwks)


def claims(**changes) -> dict:
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "aud": CLIENT,
        "iat": now,
        "exp": now + 120,
        "jti": f"jti-{time.monotonic_ns()}",
        "sub": "user-1",
        "sid": "sid-1",
        "events": {BACKCHANNEL_EVENT: {}},
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def sign(key, body: dict, typ: str = "logout+jwt", alg: str = "ES256") -> str:
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": typ}, body, key, algorithms=[alg])


def test_a_good_token_names_the_session(verifier, key):
    found = verifier.verify(sign(key, claims()))
    assert (found.sub, found.sid) == ("user-1", "sid-1")


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"iss": "https://evil.example"}, "iss"),
        ({"aud": "demo-tv"}, "aud"),
        ({"aud": ["demo-tv", "other"]}, "aud"),
        ({"iat": None}, "iat"),
        ({"iat": int(time.time()) - 3600}, "iat"),
        ({"iat": int(time.time()) + 3600}, "iat"),
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"events": None}, "events"),
        ({"events": {"http://example.com/other-event": {}}}, "events"),
        ({"events": {BACKCHANNEL_EVENT: "yes"}}, "events"),
        ({"nonce": "n-1"}, "nonce"),
        ({"sub": None, "sid": None}, "sub or sid"),
        ({"jti": None}, "jti"),
    ],
)
def test_each_claim_check_refuses(verifier, key, changes, why):
    with pytest.raises(LogoutTokenInvalid, match=why):
        verifier.verify(sign(key, claims(**changes)))


def test_an_id_token_is_not_a_logout_token(verifier, key):
    with pytest.raises(LogoutTokenInvalid, match="typ"):
        verifier.verify(sign(key, claims(), typ="JWT"))


def test_a_foreign_key_or_hmac_is_refused(verifier):
    stranger = ECKey.generate_key("P-256", parameters={"kid": "k1"})
    with pytest.raises(LogoutTokenInvalid, match="signature"):
        verifier.verify(sign(stranger, claims()))
    secret = OctKey.generate_key(256, parameters={"kid": "k1"})
    with pytest.raises(LogoutTokenInvalid, match="signature"):
        verifier.verify(sign(secret, claims(), alg="HS256"))
    with pytest.raises(LogoutTokenInvalid, match="missing"):
        verifier.verify("")


def test_a_replayed_token_is_refused(verifier, key):
    token = sign(key, claims())
    verifier.verify(token)
    with pytest.raises(LogoutTokenInvalid, match="already used"):
        verifier.verify(token)


def test_a_rotated_key_is_fetched_again(verifier, jwks, key):
    rotated = ECKey.generate_key("P-256", parameters={"kid": "k2"})
    jwks.keys.append(rotated)
    jwks.fetches.clear()
    assert verifier.verify(sign(rotated, claims())).sid == "sid-1"
    jwks.keys = [key]  # the cached set lacks k3: one forced refetch, then a clear refusal
    unknown = ECKey.generate_key("P-256", parameters={"kid": "k3"})
    jwks.fetches.clear()
    with pytest.raises(LogoutTokenInvalid, match="signature"):
        verifier.verify(sign(unknown, claims()))
    assert jwks.fetches == [False, True]


# --- the endpoint ------------------------------------------------------------------------------


def record(sub: str, sid: str | None) -> PortalSession:
    return PortalSession(sub, sid, "id-token", {"sub": sub}, "access", "openid", None)


def test_session_store_ends_by_sid_else_by_sub():
    store = SessionStore()
    a = store.open(record("u1", "s1"))
    b = store.open(record("u1", "s2"))
    c = store.open(record("u2", "s3"))
    assert store.end_for("s1", "u1") == 1
    assert store.get(a) is None and store.get(b) and store.get(c)
    assert store.end_for("s3", "u1") == 0  # a sid of someone else's session ends nothing
    assert store.end_for(None, "u1") == 1
    assert store.get(b) is None and store.get(c)


def test_endpoint_ends_the_sid_and_answers_no_store(key, jwks):
    settings = load_settings("shop", {"PORTAL_ISSUER": ISSUER})
    app = create_app(settings, logout_tokens=LogoutTokenVerifier(ISSUER, CLIENT, jwks))
    sessions = app.extensions["portal"].sessions
    mine, other = sessions.open(record("user-1", "sid-1")), sessions.open(record("user-1", "x"))
    http = app.test_client()

    bad = http.post("/backchannel-logout", data={"logout_token": sign(key, claims(nonce="n"))})
    assert bad.status_code == 400
    assert bad.json["error"] == "invalid_request"
    assert bad.headers["Cache-Control"] == "no-store"
    assert sessions.get(mine) is not None

    good = http.post("/backchannel-logout", data={"logout_token": sign(key, claims())})
    assert good.status_code == 200
    assert good.headers["Cache-Control"] == "no-store"
    assert sessions.get(mine) is None
    assert sessions.get(other) is not None

"""Access-token verification of the linking service, against tokens minted by a real IdP.

Positive cases use tokens from the IdP's token endpoint (client credentials and the code flow);
negative cases add hand-crafted tokens, signed with the IdP's own key where the point is that
a valid signature is not enough. The verifier's clock is separate from the IdP's, so its cache
and the tokens' lifetimes are aged without sleeping.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import socket
import threading
import time

import pytest
import requests
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from linking_service.auth import ALG_KEYS, MAX_TOKEN_BYTES, Principal, TokenVerifier
from linking_service.domain import Unauthenticated
from tests.support import (
    PASSWORD,
    Clock,
    authorize_url,
    callback_params,
    make_client,
    make_user,
    pkce_pair,
    sign_in_and_authorize,
)

AUD = "urn:elk:linking-service"
ALGS = ["ES256", "RS256"]
DISCOVERY = "/.well-known/openid-configuration"
JWKS = "/jwks.json"


# --- helpers ----------------------------------------------------------------------------------


class Recorder(requests.Session):
    """Counts the verifier's requests; can slow them down or rewrite the IdP's answers."""

    def __init__(self, delay: float = 0.0, rewrite=None) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.delay = delay
        self.rewrite = rewrite  # (url, decoded JSON) -> JSON to return instead
        self._lock = threading.Lock()

    def get(self, url, **kw):
        with self._lock:
            self.urls.append(url)
        if self.delay:
            time.sleep(self.delay)
        response = super().get(url, **kw)
        if self.rewrite and response.status_code == 200:
            doc = self.rewrite(url, response.json())
            response._content = json.dumps(doc).encode()
            response._content_consumed = True
        return response

    def count(self, suffix: str) -> int:
        with self._lock:
            return sum(url.endswith(suffix) for url in self.urls)


def make_verifier(issuer: str, http=None, clock=None, **kw) -> TokenVerifier:
    return TokenVerifier(
        issuer, AUD, kw.pop("algs", ALGS), http=http or Recorder(), clock=clock or Clock(), **kw
    )


def service_token(live, resource: str | None = AUD) -> tuple[str, str]:
    """(client_id, access token) from the real token endpoint, client credentials grant."""
    client = make_client(
        live, grant_types=["client_credentials"], redirect_uris=[], scopes=["linking:read"]
    )
    data = {"grant_type": "client_credentials", "scope": "linking:read"}
    if resource:
        data["resource"] = resource
    response = requests.post(
        f"{live.url}/token", auth=(client.client_id, client.secret), data=data, timeout=10
    )
    assert response.status_code == 200, response.text
    return client.client_id, response.json()["access_token"]


def code_flow_tokens(live) -> tuple[str, str, dict]:
    """(user id, client_id, token response) of a customer through the real code flow."""
    user_id, login = make_user(live)
    client = make_client(live, scopes=["openid", "profile", "linking:read"])
    verifier, challenge = pkce_pair()
    url = authorize_url(live, client, challenge, scope="openid linking:read")
    response = sign_in_and_authorize(requests.Session(), live, url, login, PASSWORD)
    code = callback_params(response)["code"]
    tokens = requests.post(
        f"{live.url}/token",
        auth=(client.client_id, client.secret),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": client.redirect_uri,
            "code_verifier": verifier,
            "resource": AUD,
        },
        timeout=10,
    )
    assert tokens.status_code == 200, tokens.text
    return user_id, client.client_id, tokens.json()


def b64(data: bytes | dict) -> str:
    if isinstance(data, dict):
        data = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parts(token: str) -> tuple[dict, dict]:
    header, payload, _ = token.split(".")
    return tuple(
        json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in (header, payload)
    )


def claims(live, **changes) -> dict:
    now = int(time.time())
    base = {
        "iss": live.url,
        "sub": "svc-1",
        "aud": AUD,
        "client_id": "svc-1",
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": secrets.token_hex(8),
        "scope": "linking:read",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def idp_key(live, alg: str = "ES256"):
    """The IdP's active private signing key (kid, key): to show a good signature is not enough."""
    with live.ctx():
        return live.services.keys._load()[0][alg]


def raw_sign(header: dict, body: dict, key, alg: str) -> str:
    """Sign any header (joserfc itself refuses some, e.g. an unknown ``crit``)."""
    signing_input = f"{b64(header)}.{b64(body)}"
    signature = JWSRegistry.algorithms[alg].sign(signing_input.encode(), key)
    return f"{signing_input}.{b64(signature)}"


def idp_signed(live, body: dict, alg: str = "ES256", **header) -> str:
    kid, key = idp_key(live, alg)
    return raw_sign({"alg": alg, "kid": kid, "typ": "at+jwt", **header}, body, key, alg)


def rejected(verifier: TokenVerifier, token) -> Unauthenticated:
    with pytest.raises(Unauthenticated) as info:
        verifier.verify(token)
    assert info.value.reason == "TOKEN_INVALID"
    return info.value


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- real tokens ------------------------------------------------------------------------------


def test_service_token_from_the_idp_verifies_and_keys_are_cached(live):
    client_id, token = service_token(live)
    http = Recorder()
    verifier = make_verifier(live.url, http)
    principal = verifier.verify(token)
    assert principal == Principal(
        live.url, client_id, client_id, frozenset({"linking:read"}), principal.claims
    )
    assert principal.claims["aud"] == AUD
    assert (http.count(DISCOVERY), http.count(JWKS)) == (1, 1)
    for _ in range(3):
        verifier.verify(service_token(live)[1])
    assert len(http.urls) == 2  # discovery and JWKS cached


def test_customer_access_token_verifies_and_its_id_token_does_not(live):
    user_id, client_id, tokens = code_flow_tokens(live)
    verifier = make_verifier(live.url)
    principal = verifier.verify(tokens["access_token"])
    assert (principal.subject, principal.client_id) == (user_id, client_id)
    assert "linking:read" in principal.scopes
    # RFC 9068 §4 / RFC 8725 §3.11: typ JWT, and aud is the client: an ID token is no bearer
    assert parts(tokens["id_token"])[0]["typ"] == "JWT"
    rejected(verifier, tokens["id_token"])


def test_rs256_token_signed_by_the_idp_verifies(live):
    with live.ctx():
        token = live.services.keys.sign(claims(live), "RS256", typ="at+jwt")
    assert make_verifier(live.url).verify(token).subject == "svc-1"


def test_token_without_resource_has_the_issuer_as_audience_and_is_rejected(live):
    _, token = service_token(live, resource=None)
    assert parts(token)[1]["aud"] == live.url
    rejected(make_verifier(live.url), token)


def test_expiry_nbf_and_iat_use_the_verifier_clock_with_leeway(live):
    _, token = service_token(live)
    exp = parts(token)[1]["exp"]
    clock = Clock()
    verifier = make_verifier(live.url, clock=clock, leeway=30)
    clock.advance(exp - time.time() + 25)  # past exp, within leeway
    verifier.verify(token)
    clock.advance(10)
    rejected(verifier, token)
    fresh = make_verifier(live.url)
    future = int(time.time()) + 120
    rejected(fresh, idp_signed(live, claims(live, nbf=future)))
    rejected(fresh, idp_signed(live, claims(live, iat=future, nbf=None)))
    fresh.verify(idp_signed(live, claims(live, iat=int(time.time()) + 20)))  # within leeway


# --- claims -----------------------------------------------------------------------------------

BAD_CLAIMS = {
    "foreign iss": lambda iss: {"iss": "https://idp.evil.example"},
    "iss with slash": lambda iss: {"iss": iss + "/"},
    "no iss": lambda iss: {"iss": None},
    "wrong aud": lambda iss: {"aud": "urn:elk:other-service"},
    "aud list without us": lambda iss: {"aud": ["urn:elk:other-service", iss]},
    "no aud": lambda iss: {"aud": None},
    "no exp": lambda iss: {"exp": None},
    "exp not a number": lambda iss: {"exp": "9999999999"},
    "exp true": lambda iss: {"exp": True},
    "no sub": lambda iss: {"sub": None},
    "empty sub": lambda iss: {"sub": ""},
    "sub not a string": lambda iss: {"sub": 42},
    "no client_id": lambda iss: {"client_id": None},
    "empty client_id": lambda iss: {"client_id": ""},
    "client_id not a string": lambda iss: {"client_id": ["svc-1"]},
    "scope not a string": lambda iss: {"scope": ["linking:read"]},
    "no iat": lambda iss: {"iat": None},
    "no jti": lambda iss: {"jti": None},
}


@pytest.mark.parametrize("changes", BAD_CLAIMS.values(), ids=BAD_CLAIMS.keys())
def test_claims_are_checked_even_under_a_valid_idp_signature(live, changes):
    verifier = make_verifier(live.url)
    verifier.verify(idp_signed(live, claims(live)))
    rejected(verifier, idp_signed(live, claims(live, **changes(live.url))))


def test_audience_list_and_space_separated_scopes(live):
    token = idp_signed(live, claims(live, aud=[live.url, AUD], scope="linking:read linking:write"))
    principal = make_verifier(live.url).verify(token)
    assert principal.scopes == {"linking:read", "linking:write"}
    no_scope = idp_signed(live, claims(live, scope=None))
    assert make_verifier(live.url).verify(no_scope).scopes == set()


# --- header: type, algorithm, key -------------------------------------------------------------


@pytest.mark.parametrize("typ", ["at+jwt", "AT+JWT", "application/at+jwt", "Application/AT+JWT"])
def test_access_token_types_accepted(live, typ):
    make_verifier(live.url).verify(idp_signed(live, claims(live), typ=typ))


@pytest.mark.parametrize("typ", ["JWT", "jwt", "", None, "at+jwt ", "logout+jwt", ["at+jwt"]])
def test_other_types_rejected(live, typ):
    kid, key = idp_key(live)
    header = {"alg": "ES256", "kid": kid}
    if typ is not None:
        header["typ"] = typ
    rejected(make_verifier(live.url), raw_sign(header, claims(live), key, "ES256"))


def test_alg_none_is_rejected(live):
    kid, _ = idp_key(live)
    for alg in ("none", "None", "NONE"):
        header = {"alg": alg, "kid": kid, "typ": "at+jwt"}
        rejected(make_verifier(live.url), f"{b64(header)}.{b64(claims(live))}.")


def test_hs256_with_the_idp_public_key_as_secret_is_rejected(live):
    verifier = make_verifier(live.url)
    _, token = service_token(live)
    verifier.verify(token)  # JWKS cached: the attacker's kid is a real one
    with live.ctx():
        jwk = next(k for k in live.services.keys.jwks()["keys"] if k["kty"] == "EC")
    pem = ECKey.import_key(jwk).as_pem(private=False)
    for secret in (pem, json.dumps(jwk).encode(), json.dumps(jwk, sort_keys=True).encode()):
        for alg in ("HS256", "hs256"):
            header = {"alg": alg, "kid": jwk["kid"], "typ": "at+jwt"}
            signing_input = f"{b64(header)}.{b64(claims(live))}"
            mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
            rejected(verifier, f"{signing_input}.{b64(mac)}")
    with pytest.raises(ValueError):
        TokenVerifier(live.url, AUD, ["ES256", "HS256"])
    with pytest.raises(ValueError):
        TokenVerifier(live.url, AUD, [])


def test_algorithm_must_match_the_key_type(live):
    es_kid, es_key = idp_key(live, "ES256")
    rs_kid, rs_key = idp_key(live, "RS256")
    verifier = make_verifier(live.url, algs=["ES256", "RS256", "PS256"])
    body = claims(live)
    verifier.verify(
        raw_sign({"alg": "RS256", "kid": rs_kid, "typ": "at+jwt"}, body, rs_key, "RS256")
    )
    mismatched = [
        # An EC kid with an RSA algorithm (and the reverse): refused before any signature check.
        raw_sign({"alg": "RS256", "kid": es_kid, "typ": "at+jwt"}, body, rs_key, "RS256"),
        raw_sign({"alg": "ES256", "kid": rs_kid, "typ": "at+jwt"}, body, es_key, "ES256"),
        # The right key type, but not the algorithm the JWK's "alg" pins (RFC 8725 §3.1).
        raw_sign({"alg": "PS256", "kid": rs_kid, "typ": "at+jwt"}, body, rs_key, "PS256"),
    ]
    for token in mismatched:
        assert "does not match the algorithm" in str(rejected(verifier, token))


def test_only_the_configured_algorithms_are_accepted(live):
    with live.ctx():
        token = live.services.keys.sign(claims(live), "RS256", typ="at+jwt")
    make_verifier(live.url).verify(token)
    error = rejected(make_verifier(live.url, algs=["ES256"]), token)
    assert "algorithm not allowed" in str(error)


def test_foreign_key_under_the_idp_kid_is_rejected(live):
    kid, _ = idp_key(live)
    foreign = ECKey.generate_key("P-256")
    rejected(
        make_verifier(live.url),
        raw_sign({"alg": "ES256", "kid": kid, "typ": "at+jwt"}, claims(live), foreign, "ES256"),
    )


@pytest.mark.parametrize("name", ["jku", "x5u", "jwk", "x5c", "crit", "cty", "b64"])
def test_headers_that_bring_their_own_key_or_extensions_are_rejected(live, name):
    foreign = ECKey.generate_key("P-256")
    value = {
        "jku": "https://idp.evil.example/jwks.json",
        "x5u": "https://idp.evil.example/cert.pem",
        "jwk": foreign.as_dict(private=False),
        "x5c": ["MIIB"],
        "crit": ["exp"],
        "cty": "JWT",
        "b64": True,
    }[name]
    body = claims(live)
    extra = {name: value, "exp": body["exp"]} if name == "crit" else {name: value}
    verifier = make_verifier(live.url)
    verifier.verify(idp_signed(live, body))  # the same token without the header is fine
    rejected(verifier, idp_signed(live, body, **extra))


def test_malformed_and_oversized_tokens(live):
    http = Recorder()
    verifier = make_verifier(live.url, http)
    kid, _ = idp_key(live)
    good = idp_signed(live, claims(live))
    head, body, sig = good.split(".")
    for token in [
        "",
        "abc",
        "a.b",
        "a.b.c",
        f"{good}.x.y",
        f"{head}.{body}",
        None,
        42,
        good.encode(),
        good + "é",
        f"{b64(b'not json')}.{body}.{sig}",
        f"{b64(b'[1]')}.{body}.{sig}",
        f"{head}.{b64(b'[1]')}.{sig}",
        f"{b64({'alg': ['ES256'], 'kid': kid, 'typ': 'at+jwt'})}.{body}.{sig}",
        f"{b64({'alg': 'ES256', 'kid': {'x': 1}, 'typ': 'at+jwt'})}.{body}.{sig}",
        f"{b64({'alg': 'ES256', 'typ': 'at+jwt'})}.{body}.{sig}",
        f"{head}.{body}.{sig[:-4]}AAAA",
    ]:
        rejected(verifier, token)
    big = idp_signed(live, claims(live, pad="x" * MAX_TOKEN_BYTES))
    assert len(big) > MAX_TOKEN_BYTES
    assert http.count(JWKS) <= 1
    before = len(http.urls)
    rejected(verifier, big)
    assert len(http.urls) == before  # refused before any work


# --- discovery and the JWKS cache -------------------------------------------------------------


def test_discovery_must_name_exactly_the_configured_issuer(live):
    _, token = service_token(live)
    port = live.url.rsplit(":", 1)[1]
    for issuer in (f"http://localhost:{port}", f"{live.url}/"):
        http = Recorder()
        rejected(make_verifier(issuer, http), token)  # the document says http://127.0.0.1:…
        assert http.count(DISCOVERY) == 1 and http.count(JWKS) == 0
    # A document that names another issuer or a downgraded/odd jwks_uri is not used either.
    for change in (
        {"issuer": "https://idp.evil.example"},
        {"jwks_uri": "file:///etc/keys"},
        {"jwks_uri": None},
    ):
        http = Recorder(
            rewrite=lambda url, doc, c=change: {**doc, **c} if DISCOVERY in url else doc
        )
        rejected(make_verifier(live.url, http), token)
        assert http.count(JWKS) == 0


def test_rotation_refetches_once_and_unknown_kids_do_not_stampede(live):
    _, before = service_token(live)
    http = Recorder()
    clock = Clock()
    verifier = make_verifier(live.url, http, clock=clock, refresh_interval=30)
    verifier.verify(before)
    with live.ctx():
        new_kid = live.services.keys.rotate("ES256", activate_in=0)
    _, after = service_token(live)
    assert parts(after)[0]["kid"] == new_kid
    verifier.verify(after)  # unknown kid: one refetch, found
    assert (http.count(DISCOVERY), http.count(JWKS)) == (1, 2)
    verifier.verify(before)  # the retired key is still published (overlap)
    stranger = raw_sign(
        {"alg": "ES256", "kid": "no-such-kid", "typ": "at+jwt"},
        claims(live),
        ECKey.generate_key("P-256"),
        "ES256",
    )
    clock.advance(1)
    for _ in range(5):
        rejected(verifier, stranger)
    assert http.count(JWKS) == 2  # the refetch for `after` counts: none within 30 s
    clock.advance(30)
    rejected(verifier, stranger)
    assert http.count(JWKS) == 3  # one more after the interval, still unknown
    verifier.verify(after)


def test_concurrent_callers_with_a_new_kid_share_one_fetch(live):
    _, before = service_token(live)
    http = Recorder(delay=0.2)
    verifier = make_verifier(live.url, http)
    verifier.verify(before)
    with live.ctx():
        live.services.keys.rotate("ES256", activate_in=0)
    _, after = service_token(live)
    barrier = threading.Barrier(16)
    results: list[object] = []

    def call():
        barrier.wait()
        try:
            results.append(verifier.verify(after).subject)
        except Exception as exc:
            results.append(exc)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 16 and all(isinstance(r, str) for r in results), results
    assert http.count(JWKS) == 2  # the first load and one refetch for all sixteen


def test_expired_cache_is_refreshed_and_a_key_gone_from_the_jwks_stops_working(live):
    _, token = service_token(live)
    kid = parts(token)[0]["kid"]
    drop = {"on": False}

    def rewrite(url, doc):
        if JWKS in url and drop["on"]:
            return {"keys": [k for k in doc["keys"] if k["kid"] != kid]}
        return doc

    http, clock = Recorder(rewrite=rewrite), Clock()
    verifier = make_verifier(live.url, http, clock=clock, cache_ttl=60, refresh_interval=5)
    verifier.verify(token)
    clock.advance(30)
    verifier.verify(token)
    assert http.count(JWKS) == 1
    drop["on"] = True
    clock.advance(31)  # cache_ttl passed: refetched, and the key is no longer published
    rejected(verifier, token)
    assert (http.count(DISCOVERY), http.count(JWKS)) == (2, 2)


# --- the IdP is unreachable or misbehaves: fail closed ----------------------------------------


def test_idp_down_cached_keys_still_verify_unknown_kids_do_not(live):
    _, token = service_token(live)
    with live.ctx():
        live.services.keys.rotate("ES256", activate_in=0)
    _, rotated = service_token(live)
    http, clock = Recorder(), Clock()
    verifier = make_verifier(
        live.url, http, clock=clock, cache_ttl=10, refresh_interval=5, timeout=1.0
    )
    verifier.verify(rotated)
    assert len(http.urls) == 2
    live.stop()
    clock.advance(11)  # beyond cache_ttl: the refetch fails, the stale keys are kept
    assert verifier.verify(rotated).client_id == parts(rotated)[1]["client_id"]
    verifier.verify(token)  # the retired key was in the cached JWKS too
    assert len(http.urls) == 3  # one failed attempt (discovery, stale too), not one per call
    stranger = raw_sign(
        {"alg": "ES256", "kid": "unknown", "typ": "at+jwt"},
        claims(live),
        ECKey.generate_key("P-256"),
        "ES256",
    )
    rejected(verifier, stranger)
    rejected(verifier, stranger)
    assert len(http.urls) == 4  # the unknown kid tried once
    clock.advance(6)
    rejected(verifier, stranger)  # tried again after refresh_interval, still down
    verifier.verify(rotated)
    assert len(http.urls) == 5


def test_idp_unreachable_and_nothing_cached_is_unauthenticated(live):
    _, token = service_token(live)
    issuer = f"http://127.0.0.1:{closed_port()}"
    verifier = TokenVerifier(issuer, AUD, ALGS, timeout=1.0)
    rejected(verifier, token)
    live.stop()
    rejected(make_verifier(live.url, timeout=1.0), token)


class Canned(requests.Session):
    """An IdP that is not there: ``answer(url)`` gives the body, or the exception raised."""

    def __init__(self, answer) -> None:
        super().__init__()
        self.answer = answer
        self.urls: list[str] = []

    def get(self, url, **kw):
        self.urls.append(url)
        if isinstance(self.answer, Exception):
            raise self.answer
        response = requests.Response()
        response.status_code, response.url = 200, url
        response._content, response._content_consumed = self.answer(url), True
        return response


@pytest.mark.parametrize(
    "answer",
    [
        RuntimeError("bug in a transport adapter"),
        requests.ConnectionError("refused"),
        requests.Timeout("slow"),
        lambda url: b"<html>maintenance</html>",
        lambda url: b"[]",
        lambda url: b'{"issuer": 42}',
        lambda url: b"{" + b" " * (300 * 1024) + b"}",
    ],
    ids=["bug", "refused", "timeout", "html", "list", "odd issuer", "huge"],
)
def test_anything_going_wrong_with_the_idp_is_only_ever_unauthenticated(answer):
    token = raw_sign(
        {"alg": "ES256", "kid": "k1", "typ": "at+jwt"},
        {"sub": "x"},
        ECKey.generate_key("P-256"),
        "ES256",
    )
    rejected(TokenVerifier("https://idp.example", AUD, ALGS, http=Canned(answer)), token)


def test_a_jwks_with_junk_entries_keeps_the_usable_keys(live):
    _, token = service_token(live)
    es_kid, _ = idp_key(live)

    def rewrite(url, doc):
        if JWKS not in url:
            return doc
        es = next(k for k in doc["keys"] if k["kid"] == es_kid)
        junk = [
            1,
            {"kty": "oct", "k": "c2VjcmV0", "kid": "oct"},
            {"kty": "EC", "kid": "bad"},
            {"kty": "RSA"},
            {**es, "use": "enc", "kid": "enc"},
        ]
        return {"keys": junk + doc["keys"]}

    verifier = make_verifier(live.url, Recorder(rewrite=rewrite))
    assert verifier.verify(token).subject
    # The IdP's own key, republished as an encryption key, does not verify signatures.
    error = rejected(verifier, idp_signed(live, claims(live), kid="enc"))
    assert "unknown signing key" in str(error)  # dropped from the set, not merely failing


def canned_idp(issuer: str, jwks: dict, jwks_uri: str) -> Canned:
    def answer(url):
        doc = {"issuer": issuer, "jwks_uri": jwks_uri} if DISCOVERY in url else jwks
        return json.dumps(doc).encode()

    return Canned(answer)


def offline_token(issuer: str, key, alg: str, kid: str = "k1") -> str:
    now = int(time.time())
    body = {
        "iss": issuer,
        "sub": "s",
        "aud": AUD,
        "client_id": "c",
        "iat": now,
        "exp": now + 60,
        "jti": "j",
    }
    return raw_sign({"alg": alg, "kid": kid, "typ": "at+jwt"}, body, key, alg)


def test_an_https_issuer_never_takes_its_keys_over_http():
    issuer, key = "https://idp.example", ECKey.generate_key("P-256")
    jwks = {"keys": [{**key.as_dict(private=False), "kid": "k1", "alg": "ES256", "use": "sig"}]}
    token = offline_token(issuer, key, "ES256")
    good = canned_idp(issuer, jwks, "https://keys.idp.example/jwks")
    assert TokenVerifier(issuer, AUD, ALGS, http=good).verify(token).subject == "s"
    assert good.urls == [issuer + DISCOVERY, "https://keys.idp.example/jwks"]
    downgraded = canned_idp(issuer, jwks, "http://idp.example/jwks.json")
    rejected(TokenVerifier(issuer, AUD, ALGS, http=downgraded), token)
    assert downgraded.urls == [issuer + DISCOVERY]


KEYS = {
    "ES256": lambda: ECKey.generate_key("P-256"),
    "ES384": lambda: ECKey.generate_key("P-384"),
    "RS256": lambda: RSAKey.generate_key(2048),
    "PS256": lambda: RSAKey.generate_key(2048),
    "Ed25519": lambda: OKPKey.generate_key("Ed25519"),
}


@pytest.mark.parametrize("alg", KEYS)
def test_each_allowed_algorithm_with_its_own_key_type(alg):
    issuer, key = "https://idp.example", KEYS[alg]()
    jwks = {"keys": [{**key.as_dict(private=False), "kid": "k1"}]}  # no "alg" pin in the JWK
    http = canned_idp(issuer, jwks, issuer + "/jwks")
    verifier = TokenVerifier(issuer, AUD, list(KEYS), http=http)
    assert verifier.verify(offline_token(issuer, key, alg)).client_id == "c"
    # The kid of this key with an algorithm for another key type or curve is refused.
    for other in KEYS:
        if ALG_KEYS[other] != ALG_KEYS[alg]:
            forged = offline_token(issuer, KEYS[other](), other)
            assert "does not match" in str(rejected(verifier, forged))


def test_an_unexpected_error_inside_the_verifier_is_still_unauthenticated(live):
    def broken_clock() -> float:
        raise ZeroDivisionError("a bug")

    verifier = make_verifier(live.url, clock=broken_clock)
    error = rejected(verifier, service_token(live)[1])
    assert error.__cause__ is None and "ZeroDivision" not in str(error)


def test_stale_keys_are_trusted_only_up_to_max_stale(live):
    _, token = service_token(live)
    http, clock = Recorder(), Clock()
    verifier = make_verifier(
        live.url, http, clock=clock, cache_ttl=10, refresh_interval=5, timeout=1.0, max_stale=100
    )
    verifier.verify(token)
    live.stop()
    clock.advance(50)  # the IdP is down: stale keys still verify
    verifier.verify(token)
    clock.advance(60)  # past max_stale: fail closed
    rejected(verifier, token)


@pytest.mark.parametrize(
    ("failure", "bug"),
    [(requests.ConnectionError("refused"), False), (RuntimeError("bug in an adapter"), True)],
    ids=["outside", "bug"],
)
def test_a_bug_while_fetching_keys_is_logged_with_its_traceback(caplog, failure, bug):
    """Stale-if-error covers what the IdP and the network can do (a warning); a bug of ours is
    not passed off as "cannot refresh" but logged as an error with its traceback."""
    token = raw_sign(
        {"alg": "ES256", "kid": "k1", "typ": "at+jwt"},
        {"sub": "x"},
        ECKey.generate_key("P-256"),
        "ES256",
    )
    verifier = TokenVerifier("https://idp.example", AUD, ALGS, http=Canned(failure))
    with caplog.at_level(logging.WARNING, logger="linking_service.auth"):
        rejected(verifier, token)
    traced = [r for r in caplog.records if r.exc_info and r.exc_info[1] is failure]
    warned = [r for r in caplog.records if "cannot refresh" in r.getMessage()]
    if bug:
        assert [r.levelno for r in traced] == [logging.ERROR] and warned == []
    else:
        assert traced == [] and [r.levelno for r in warned] == [logging.WARNING]


# --- verified tokens remembered by hash (issue 10) ---------------------------------------------


def test_a_token_presented_again_is_not_verified_again(live, monkeypatch):
    from linking_service import auth

    decoded = []
    real = auth.jwt.decode
    monkeypatch.setattr(auth.jwt, "decode", lambda *a, **k: decoded.append(1) or real(*a, **k))
    _, token = service_token(live)
    verifier = make_verifier(live.url)
    first = verifier.verify(token)
    for _ in range(5):
        assert verifier.verify(token) == first
    assert len(decoded) == 1
    verifier.verify(service_token(live)[1])  # another token is verified on its own
    assert len(decoded) == 2


def test_a_remembered_token_still_expires(live):
    clock = Clock()
    verifier = make_verifier(live.url, clock=clock)
    token = idp_signed(live, claims(live, exp=int(clock()) + 60))
    verifier.verify(token)
    clock.advance(59)
    verifier.verify(token)
    clock.advance(2 + 30)  # past exp and the leeway: the signature alone never keeps it alive
    rejected(verifier, token)


def test_a_remembered_token_is_refused_once_its_key_is_withdrawn(live):
    clock = Clock()
    withdrawn = {"on": False}

    def rewrite(url, doc):
        if url.endswith(JWKS) and withdrawn["on"]:
            return {"keys": [k for k in doc["keys"] if k["alg"] != "ES256"]}
        return doc

    verifier = make_verifier(live.url, http=Recorder(rewrite=rewrite), clock=clock, cache_ttl=60)
    token = idp_signed(live, claims(live, exp=int(clock()) + 600))
    verifier.verify(token)
    withdrawn["on"] = True
    clock.advance(61)  # the key cache turns over: the JWK Set no longer has the ES256 key
    rejected(verifier, token)


def test_tampered_copy_of_a_remembered_token_is_refused(live):
    _, token = service_token(live)
    verifier = make_verifier(live.url)
    verifier.verify(token)
    header, payload, signature = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body["scope"] = "linking linking:read linking:auto"
    rejected(verifier, f"{header}.{b64(body)}.{signature}")

"""Google adapter against the Google fake over real HTTP (reference §5, §8 "Google")."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import RSAKey

from idp.adapters.social.base import s256
from idp.domain.social import SocialError
from tests.social.conftest import Round, adapter, person


@pytest.fixture
def google(fakes, tmp_path):
    return adapter(fakes, "google", tmp_path)


def test_round_trip_through_discovery_and_a_validated_id_token(google):
    attempt = Round(google)
    query = parse_qs(urlsplit(attempt.url()).query)
    assert query["nonce"] == [attempt.nonce]
    assert query["code_challenge"] == [s256(attempt.code_verifier)]
    assert query["scope"] == ["openid email profile"]
    profile = attempt.complete(person(attempt.url(), "ivan"))
    assert (profile.provider, profile.subject) == ("google", "100001")
    assert (profile.given_name, profile.family_name) == ("Иван", "Петров")
    assert profile.email == "ivan.petrov@example.ru"
    assert profile.email_verified is True  # the one provider that asserts it
    assert profile.phone is None


def test_the_legacy_issuer_spelling_is_accepted_and_email_verified_false_kept(google):
    attempt = Round(google)
    profile = attempt.complete(person(attempt.url(), "pavel"))
    assert not profile.raw["iss"].startswith("http")
    assert profile.email_verified is False


def test_a_person_without_email(google):
    attempt = Round(google)
    profile = attempt.complete(person(attempt.url(), "olga"))
    assert (profile.email, profile.email_verified) == (None, False)


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": "another-client"},
        {"aud": ["elk-google", "another-client"], "azp": "another-client"},
        {"iss": "https://accounts.example.com"},
        {"nonce": "a-nonce-from-another-attempt"},
    ],
    ids=["aud", "azp", "iss", "nonce"],
)
def test_a_foreign_audience_issuer_or_nonce_is_refused(fakes, google, claims):
    fakes.configs["google"].id_token_claims.update(claims)
    attempt = Round(google)
    with pytest.raises(SocialError) as info:
        attempt.complete(person(attempt.url()))
    assert info.value.kind == "nonce"


def test_a_replayed_nonce_is_refused(google):
    """The ID token carries the nonce of the attempt that sent it; completing it for another
    attempt (another nonce kept by the session) fails."""
    attempt = Round(google)
    params = person(attempt.url())
    with pytest.raises(SocialError) as info:
        attempt.complete(params, nonce="the-nonce-of-another-attempt")
    assert info.value.kind == "nonce"


def test_an_expired_id_token_is_refused(fakes, google):
    fakes.configs["google"].id_token_claims.update(exp=int(time.time()) - 3600)
    attempt = Round(google)
    with pytest.raises(SocialError) as info:
        attempt.complete(person(attempt.url()))
    assert info.value.kind == "bad_response"


def test_an_id_token_signed_by_another_key_is_refused(fakes, google):
    stranger = RSAKey.generate_key(2048, parameters={"kid": "stranger"})
    now = int(time.time())
    forged = jwt.encode(
        {"alg": "RS256", "kid": "stranger"},
        {"iss": fakes.urls["google"], "aud": "elk-google", "sub": "1", "iat": now, "exp": now + 60},
        stranger,
    )
    fakes.configs["google"].override["/token"] = {"id_token": forged}
    attempt = Round(google)
    with pytest.raises(SocialError) as info:
        attempt.complete(person(attempt.url()))
    assert info.value.kind == "bad_response"


def test_an_unsigned_id_token_is_refused(fakes, google):
    fakes.configs["google"].override["/token"] = {"id_token": "eyJhbGciOiJub25lIn0.e30."}
    attempt = Round(google)
    with pytest.raises(SocialError) as info:
        attempt.complete(person(attempt.url()))
    assert info.value.kind == "bad_response"


def test_a_wrong_verifier_is_invalid_grant(google):
    attempt = Round(google)
    params = person(attempt.url())
    with pytest.raises(SocialError) as info:
        attempt.complete(params, code_verifier="q" * 50)
    assert info.value.kind == "invalid_grant"


def test_discovery_jwks_userinfo_and_offline_refresh_token(fakes, google):
    base = fakes.urls["google"]
    meta = requests.get(f"{base}/.well-known/openid-configuration", timeout=5).json()
    assert meta["issuer"] == base and "S256" in meta["code_challenge_methods_supported"]
    jwks = requests.get(meta["jwks_uri"], timeout=5).json()
    assert jwks["keys"][0]["kid"] and "d" not in jwks["keys"][0]
    attempt = Round(google)
    url = attempt.url() + "&access_type=offline"
    code = person(url)["code"]
    token = requests.post(
        meta["token_endpoint"],
        auth=("elk-google", "google-test-secret"),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": attempt.redirect_uri,
            "code_verifier": attempt.code_verifier,
        },
        timeout=5,
    ).json()
    assert token["refresh_token"] and token["token_type"] == "Bearer"
    info = requests.get(
        meta["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {token['access_token']}"},
        timeout=5,
    ).json()
    assert info["sub"] == "100001" and info["email_verified"] is True


def test_no_refresh_token_without_offline_access(fakes, google):
    attempt = Round(google)
    code = person(attempt.url())["code"]
    token = requests.post(
        f"{fakes.urls['google']}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": "elk-google",
            "client_secret": "google-test-secret",
            "redirect_uri": attempt.redirect_uri,
            "code_verifier": attempt.code_verifier,
        },
        timeout=5,
    ).json()
    assert "refresh_token" not in token and token["id_token"]


def test_discovery_down_is_unavailable(fakes, google):
    fakes.configs["google"].fail["/.well-known/openid-configuration"] = 503
    with pytest.raises(SocialError) as info:
        Round(google).url()
    assert info.value.kind == "unavailable"

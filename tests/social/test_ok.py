"""OK adapter against the OK fake over real HTTP (reference §3, §8 "OK")."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from idp.adapters.social.ok import signature
from idp.domain.social import SocialError
from tests.social.conftest import Round, adapter, person


@pytest.fixture
def ok(fakes, tmp_path):
    return adapter(fakes, "ok", tmp_path)


def test_round_trip_normalises_the_profile(ok):
    attempt = Round(ok)
    profile = attempt.complete(person(attempt.url(), "ivan"))
    assert (profile.provider, profile.subject) == ("ok", "100001")
    assert (profile.given_name, profile.family_name) == ("Иван", "Петров")
    assert profile.email == "ivan.petrov@example.ru" and profile.email_verified is False
    assert profile.phone is None


def test_scopes_are_separated_by_semicolons(ok):
    query = parse_qs(urlsplit(Round(ok).url()).query)
    assert query["scope"] == ["VALUABLE_ACCESS;GET_EMAIL"]
    assert query["layout"] == ["w"]


def test_no_email_without_get_email(fakes, ok):
    attempt = Round(ok)
    url = attempt.url().replace("VALUABLE_ACCESS%3BGET_EMAIL", "VALUABLE_ACCESS")
    profile = attempt.complete(person(url, "ivan"))
    assert profile.email is None and profile.raw["has_email"] is True


def test_a_person_without_email(ok):
    attempt = Round(ok)
    assert attempt.complete(person(attempt.url(), "olga")).email is None


def test_the_signature_is_the_documented_one():
    """apiok.ru's worked example: md5 of the sorted pairs and md5(token + secret)."""
    import hashlib

    params = {"application_key": "CBA", "method": "users.getCurrentUser", "format": "json"}
    secret = hashlib.md5(b"tokenSECRET").hexdigest()
    joined = "application_key=CBAformat=jsonmethod=users.getCurrentUser"
    assert signature({**params, "access_token": "token"}, "token", "SECRET") == (
        hashlib.md5((joined + secret).encode()).hexdigest()
    )


def test_a_wrong_secret_breaks_the_signature(fakes, tmp_path):
    """The token endpoint takes the secret in the clear; the API checks it through ``sig``.
    Here the token is obtained properly and then signed with another secret."""
    attempt = Round(adapter(fakes, "ok", tmp_path))
    code = person(attempt.url())["code"]
    api = fakes.urls["ok"]
    token = requests.post(
        f"{api}/oauth/token.do",
        params={
            "code": code,
            "client_id": "elk-ok",
            "client_secret": "ok-test-secret",
            "redirect_uri": attempt.redirect_uri,
            "grant_type": "authorization_code",
        },
        timeout=5,
    ).json()
    assert token["token_type"] == "session" and token["refresh_token"]
    access = token["access_token"]
    query = {
        "application_key": "ok-test-public-key",
        "format": "json",
        "method": "users.getCurrentUser",
    }
    bad = {**query, "sig": signature(query, access, "another-secret"), "access_token": access}
    answer = requests.get(f"{api}/fb.do", params=bad, timeout=5)
    assert answer.status_code == 200 and answer.json()["error_code"] == 104
    good = {**query, "sig": signature(query, access, "ok-test-secret"), "access_token": access}
    assert requests.get(f"{api}/fb.do", params=good, timeout=5).json()["uid"] == "100001"
    rest = {k: v for k, v in good.items() if k != "method"}
    rest["sig"] = signature(rest, access, "ok-test-secret")
    assert (
        requests.post(f"{api}/api/users/getCurrentUser", data=rest, timeout=5).json()["uid"]
        == "100001"
    )


def test_adapter_signature_mismatch_is_bad_response(fakes, ok):
    """A token obtained properly, then the profile call signed with a secret OK does not
    know (a rotated key on one side): error 104 at HTTP 200 → ``bad_response``."""
    attempt = Round(ok)
    code = person(attempt.url())["code"]
    access = requests.post(
        f"{fakes.urls['ok']}/oauth/token.do",
        data={
            "code": code,
            "client_id": "elk-ok",
            "client_secret": "ok-test-secret",
            "redirect_uri": attempt.redirect_uri,
            "grant_type": "authorization_code",
        },
        timeout=5,
    ).json()["access_token"]
    ok.client_secret = "rotated-secret"
    with pytest.raises(SocialError) as info:
        ok._profile(access)
    assert info.value.kind == "bad_response" and "104" in info.value.detail


def test_a_wrong_application_key_is_an_api_error_at_http_200(fakes, tmp_path):
    wrong = adapter(fakes, "ok", tmp_path, IDP_SOCIAL_OK_APPLICATION_KEY="not-ours")
    attempt = Round(wrong)
    with pytest.raises(SocialError) as info:
        attempt.complete(person(attempt.url()))
    assert info.value.kind == "bad_response" and "101" in info.value.detail


def test_an_expired_token_is_error_102(fakes, ok):
    query = {
        "application_key": "ok-test-public-key",
        "format": "json",
        "method": "users.getCurrentUser",
    }
    query["sig"] = signature(query, "gone", "ok-test-secret")
    answer = requests.get(
        f"{fakes.urls['ok']}/fb.do", params={**query, "access_token": "gone"}, timeout=5
    )
    assert answer.status_code == 200 and answer.json()["error_code"] == 102


def test_the_redirect_uri_query_is_ignored_but_the_path_is_exact(fakes, ok):
    attempt = Round(ok)
    attempt.redirect_uri += "?from=test"
    assert requests.get(attempt.url(), timeout=5).status_code == 200
    attempt.redirect_uri = attempt.redirect_uri.replace("/callback", "/callback/")
    assert requests.get(attempt.url(), timeout=5).status_code == 400

"""Yandex ID adapter against the Yandex fake over real HTTP (reference §4, §8 "Yandex")."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from idp.adapters.social.base import s256
from idp.domain.social import SocialError
from tests.social.conftest import Round, adapter, person


@pytest.fixture
def yandex(fakes, tmp_path):
    return adapter(fakes, "yandex", tmp_path)


def test_round_trip_normalises_the_profile(yandex):
    attempt = Round(yandex)
    profile = attempt.complete(person(attempt.url(), "ivan"))
    assert (profile.provider, profile.subject) == ("yandex", "100001")
    assert (profile.given_name, profile.family_name) == ("Иван", "Петров")
    assert profile.email == "ivan.petrov@example.ru" and profile.email_verified is False
    assert profile.phone == "+79161234567"  # default_phone.number


def test_pkce_s256_and_no_scope_in_the_authorization_url(yandex):
    attempt = Round(yandex)
    query = parse_qs(urlsplit(attempt.url()).query)
    assert query["code_challenge"] == [s256(attempt.code_verifier)]
    assert query["code_challenge_method"] == ["S256"]
    assert "scope" not in query


def test_an_empty_default_email_falls_back_to_emails(yandex):
    attempt = Round(yandex)
    profile = attempt.complete(person(attempt.url(), "pavel"))
    assert profile.raw["default_email"] == ""
    assert profile.email == "pavel.morozov@example.ru"


@pytest.mark.parametrize(
    ("identity", "email", "phone"),
    [("olga", None, "+79167654321"), ("sergey", "s.kuznetsov@example.ru", None)],
)
def test_missing_email_or_phone(yandex, identity, email, phone):
    attempt = Round(yandex)
    profile = attempt.complete(person(attempt.url(), identity))
    assert (profile.email, profile.phone) == (email, phone)


def test_no_default_phone_without_its_scope(fakes, tmp_path):
    fakes.configs["yandex"].scope = "login:info login:email"
    try:
        attempt = Round(adapter(fakes, "yandex", tmp_path))
        assert attempt.complete(person(attempt.url(), "ivan")).phone is None
    finally:
        fakes.configs["yandex"].scope = "login:info login:email login:default_phone"


def test_a_wrong_verifier_is_invalid_grant(yandex):
    attempt = Round(yandex)
    params = person(attempt.url())
    with pytest.raises(SocialError) as info:
        attempt.complete(params, code_verifier="w" * 50)
    assert info.value.kind == "invalid_grant"


def test_a_wrong_client_secret_is_a_config_error(fakes, tmp_path):
    wrong = adapter(fakes, "yandex", tmp_path, IDP_SOCIAL_YANDEX_CLIENT_SECRET="not-it")
    attempt = Round(wrong)
    with pytest.raises(SocialError) as info:
        attempt.complete(person(attempt.url()))
    assert info.value.kind == "config"


def test_info_wants_the_oauth_scheme_not_bearer(fakes, yandex):
    attempt = Round(yandex)
    code = person(attempt.url())["code"]
    token = requests.post(
        f"{fakes.urls['yandex']}/token",
        auth=("elk-yandex", "yandex-test-secret"),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": attempt.code_verifier,
        },
        timeout=5,
    ).json()["access_token"]
    info = f"{fakes.urls['yandex']}/info?format=json"
    bearer = requests.get(info, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert bearer.status_code == 401
    oauth = requests.get(info, headers={"Authorization": f"OAuth {token}"}, timeout=5)
    assert oauth.json()["id"] == "100001"
    assert requests.get(f"{info}&oauth_token={token}", timeout=5).status_code == 200


def test_body_credentials_are_accepted_too(fakes, yandex):
    attempt = Round(yandex)
    code = person(attempt.url())["code"]
    answer = requests.post(
        f"{fakes.urls['yandex']}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": "elk-yandex",
            "client_secret": "yandex-test-secret",
            "code_verifier": attempt.code_verifier,
        },
        timeout=5,
    )
    assert answer.json()["token_type"] == "bearer"


def test_a_token_of_another_application_is_refused(fakes, yandex):
    attempt = Round(yandex)
    params = person(attempt.url())
    fakes.configs["yandex"].override["/info"] = {"client_id": "someone-else"}
    with pytest.raises(SocialError) as info:
        attempt.complete(params)
    assert info.value.kind == "bad_response"

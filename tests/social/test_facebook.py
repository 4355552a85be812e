"""Facebook adapter against the Facebook fake over real HTTP (reference §6, §8 "Facebook")."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from idp.adapters.social.facebook import appsecret_proof
from idp.domain.social import SocialError
from tests.social.conftest import Round, adapter, person


@pytest.fixture
def facebook(fakes, tmp_path):
    return adapter(fakes, "facebook", tmp_path)


def test_round_trip_normalises_the_profile(facebook):
    attempt = Round(facebook)
    profile = attempt.complete(person(attempt.url(), "ivan"))
    assert (profile.provider, profile.subject) == ("facebook", "100001")
    assert (profile.given_name, profile.family_name) == ("Иван", "Петров")
    assert profile.email == "ivan.petrov@example.ru" and profile.email_verified is False


def test_versioned_dialog_with_comma_scopes(facebook):
    url = urlsplit(Round(facebook).url())
    assert url.path == "/v24.0/dialog/oauth"
    assert parse_qs(url.query)["scope"] == ["email,public_profile"]


def test_another_api_version_is_configuration(fakes, tmp_path):
    old = adapter(fakes, "facebook", tmp_path, IDP_SOCIAL_FACEBOOK_API_VERSION="v19.0")
    attempt = Round(old)
    assert "/v19.0/dialog/oauth" in attempt.url()
    assert attempt.complete(person(attempt.url())).subject == "100001"


def test_a_person_without_email(facebook):
    attempt = Round(facebook)
    assert attempt.complete(person(attempt.url(), "olga")).email is None


def test_cancel_is_user_denied(facebook):
    attempt = Round(facebook)
    answer = requests.post(
        attempt.url(), data={"decision": "deny"}, allow_redirects=False, timeout=5
    )
    location = answer.headers["Location"]
    assert location.endswith("#_=_")
    params = dict(parse_qs(urlsplit(location).query, keep_blank_values=True))
    params = {k: v[0] for k, v in params.items()}
    assert params["error_reason"] == "user_denied" and params["error_code"] == "200"
    with pytest.raises(SocialError) as info:
        attempt.complete(params)
    assert info.value.kind == "denied"


def test_a_dialog_error_code_alone_is_bad_response(facebook):
    attempt = Round(facebook)
    with pytest.raises(SocialError) as info:
        attempt.complete({"error_code": "1349048", "error_message": "App not set up"})
    assert info.value.kind == "bad_response"


def test_a_wrong_app_secret_is_a_config_error(fakes, tmp_path):
    wrong = adapter(fakes, "facebook", tmp_path, IDP_SOCIAL_FACEBOOK_CLIENT_SECRET="nope")
    attempt = Round(wrong)
    with pytest.raises(SocialError) as info:
        attempt.complete(person(attempt.url()))
    assert info.value.kind == "config"


def test_appsecret_proof_is_checked_exactly(fakes, facebook):
    attempt = Round(facebook)
    code = person(attempt.url())["code"]
    base = f"{fakes.urls['facebook']}/v24.0"
    token = requests.get(
        f"{base}/oauth/access_token",
        params={
            "client_id": "elk-facebook",
            "client_secret": "facebook-test-secret",
            "redirect_uri": attempt.redirect_uri,
            "code": code,
        },
        timeout=5,
    ).json()
    assert token["token_type"] == "bearer"
    access = token["access_token"]
    me = f"{base}/me"
    missing = requests.get(me, params={"access_token": access}, timeout=5).json()
    assert missing["error"]["code"] == 190 and missing["error"]["type"] == "OAuthException"
    wrong = requests.get(
        me,
        params={"access_token": access, "appsecret_proof": appsecret_proof(access, "x")},
        timeout=5,
    ).json()
    assert wrong["error"]["code"] == 190
    right = requests.get(
        me,
        params={
            "access_token": access,
            "fields": "id,first_name",
            "appsecret_proof": appsecret_proof(access, "facebook-test-secret"),
        },
        timeout=5,
    ).json()
    assert right == {"id": "100001", "first_name": "Иван"}  # fields honoured


def test_adapter_with_a_wrong_proof_is_bad_response(fakes, facebook):
    attempt = Round(facebook)
    code = person(attempt.url())["code"]
    access = requests.get(
        f"{fakes.urls['facebook']}/v24.0/oauth/access_token",
        params={
            "client_id": "elk-facebook",
            "client_secret": "facebook-test-secret",
            "redirect_uri": attempt.redirect_uri,
            "code": code,
        },
        timeout=5,
    ).json()["access_token"]
    facebook.client_secret = "rotated"
    with pytest.raises(SocialError) as info:
        facebook._profile(access)
    assert info.value.kind == "bad_response" and "190" in info.value.detail


def test_a_used_code_is_invalid_grant_with_subcode_36009(fakes, facebook):
    attempt = Round(facebook)
    params = person(attempt.url())
    attempt.complete(params)
    with pytest.raises(SocialError) as info:
        attempt.complete(params)
    assert info.value.kind == "invalid_grant" and "used" in info.value.detail

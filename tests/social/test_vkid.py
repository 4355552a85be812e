"""VK ID adapter against the VK ID fake over real HTTP (reference §2, §8 "VK ID")."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from idp.adapters.social import build_social_providers
from idp.adapters.social.base import s256
from idp.config import load_settings
from idp.domain.social import SocialError
from tests.social.conftest import Round, adapter, person


@pytest.fixture
def vkid(fakes, tmp_path):
    return adapter(fakes, "vkid", tmp_path)


def test_round_trip_normalises_the_profile(vkid):
    attempt = Round(vkid)
    params = person(attempt.url(), "ivan")
    assert params["type"] == "code_v2" and params["device_id"] and params["expires_in"]
    profile = attempt.complete(params)
    assert profile.provider == "vkid"
    assert profile.subject == "100001"  # an int in the token response, a string in user_info
    assert (profile.given_name, profile.family_name) == ("Иван", "Петров")
    assert profile.email == "ivan.petrov@example.ru"
    assert profile.email_verified is False  # VK ID has no e-mail-verified flag
    assert profile.phone == "+79161234567"  # VK ID sends 79161234567
    assert profile.raw["phone"] == "79161234567"


def test_authorization_url_sends_pkce_s256_lowercase_and_the_scopes(vkid):
    attempt = Round(vkid)
    query = parse_qs(urlsplit(attempt.url()).query)
    assert query["code_challenge_method"] == ["s256"]
    assert query["code_challenge"] == [s256(attempt.code_verifier)]
    assert query["scope"] == ["vkid.personal_info email phone"]
    assert "provider" not in query and "code_verifier" not in query


@pytest.mark.parametrize(
    ("identity", "email", "phone"),
    [("olga", None, "+79167654321"), ("sergey", "s.kuznetsov@example.ru", None)],
)
def test_missing_email_or_phone(vkid, identity, email, phone):
    attempt = Round(vkid)
    profile = attempt.complete(person(attempt.url(), identity))
    assert (profile.email, profile.phone) == (email, phone)


def test_a_typed_person_with_cyrillic_names(vkid):
    attempt = Round(vkid)
    params = person(
        attempt.url(), "typed", given_name="Ёлка", family_name="Иголкина", email="", phone=""
    )
    profile = attempt.complete(params)
    assert (profile.given_name, profile.family_name, profile.email) == ("Ёлка", "Иголкина", None)
    again = Round(vkid)
    params = person(again.url(), "typed", given_name="Ёлка", family_name="Иголкина")
    assert again.complete(params).subject == profile.subject


def test_a_wrong_verifier_is_invalid_grant(vkid):
    attempt = Round(vkid)
    params = person(attempt.url())
    with pytest.raises(SocialError) as info:
        attempt.complete(params, code_verifier="x" * 64)
    assert info.value.kind == "invalid_grant"


def test_another_device_id_is_invalid_grant(vkid):
    attempt = Round(vkid)
    params = person(attempt.url())
    with pytest.raises(SocialError) as info:
        attempt.complete({**params, "device_id": "another-device"})
    assert info.value.kind == "invalid_grant"


def test_a_callback_without_device_id_is_refused(vkid):
    attempt = Round(vkid)
    params = person(attempt.url())
    del params["device_id"]
    with pytest.raises(SocialError) as info:
        attempt.complete(params)
    assert info.value.kind == "bad_response"


def test_the_state_echoed_by_the_token_endpoint_is_checked(fakes, vkid):
    """VK ID echoes ``state`` in the token response and the web SDK refuses a mismatch
    (vkid-web-sdk src/auth/auth.ts); so does the adapter."""
    attempt = Round(vkid)
    params = person(attempt.url())
    fakes.configs["vkid"].override["/oauth2/auth"] = {"state": "another-state"}
    with pytest.raises(SocialError) as info:
        attempt.complete(params)
    assert info.value.kind == "state"


def test_user_info_about_another_user_is_refused(fakes, vkid):
    attempt = Round(vkid)
    params = person(attempt.url())
    fakes.configs["vkid"].override["/oauth2/user_info"] = {"user_id": "999"}
    with pytest.raises(SocialError) as info:
        attempt.complete(params)
    assert info.value.kind == "bad_response"


def test_mail_through_vkid_asks_for_the_mail_provider(fakes, tmp_path):
    env = {
        "IDP_VAR_DIR": str(tmp_path),
        "IDP_SOCIAL_MAIL_ENABLED": "true",
        "IDP_SOCIAL_MAIL_MODE": "vkid",
        "IDP_SOCIAL_VKID_CLIENT_ID": fakes.configs["vkid"].client_id,
        "IDP_SOCIAL_VKID_BASE_URL": fakes.urls["vkid"],
    }
    mail = build_social_providers(load_settings(env))["mail"]
    attempt = Round(mail)
    url = attempt.url()
    assert parse_qs(urlsplit(url).query)["provider"] == ["mail_ru"]
    assert "Mail (через VK ID)" in requests.get(url, timeout=5).text
    profile = attempt.complete(person(url, "sergey"))
    assert (profile.provider, profile.subject) == ("mail", "100003")


def test_bad_token_at_user_info(fakes, vkid):
    answer = requests.post(
        f"{fakes.urls['vkid']}/oauth2/user_info",
        data={"client_id": "elk-vkid", "access_token": "nonsense"},
        timeout=5,
    )
    assert answer.json()["error"] == "invalid_token"
    assert requests.get(f"{fakes.urls['vkid']}/oauth2/user_info", timeout=5).status_code == 405


def test_the_fake_refuses_a_missing_challenge_and_a_malformed_verifier(fakes, vkid):
    attempt = Round(vkid)
    url = attempt.url()
    no_challenge = url.replace("code_challenge=", "not_a_challenge=")
    answer = requests.post(
        no_challenge,
        data={"decision": "allow", "identity": "ivan"},
        allow_redirects=False,
        timeout=5,
    )
    assert "error=invalid_request" in answer.headers["Location"]
    params = person(url)
    short = {
        "grant_type": "authorization_code",
        "code": params["code"],
        "code_verifier": "short",
        "client_id": "elk-vkid",
        "device_id": params["device_id"],
        "redirect_uri": attempt.redirect_uri,
        "state": attempt.state,
    }
    token = requests.post(f"{fakes.urls['vkid']}/oauth2/auth", data=short, timeout=5)
    assert token.status_code == 400 and token.json()["error"] == "invalid_request"
    assert token.json()["state"] == attempt.state


def test_the_fake_merges_query_and_body_as_the_web_sdk_sends_them(fakes, vkid):
    attempt = Round(vkid)
    params = person(attempt.url())
    query = {
        "grant_type": "authorization_code",
        "code_verifier": attempt.code_verifier,
        "client_id": "elk-vkid",
        "device_id": params["device_id"],
        "redirect_uri": attempt.redirect_uri,
        "state": attempt.state,
    }
    token = requests.post(
        f"{fakes.urls['vkid']}/oauth2/auth", params=query, data={"code": params["code"]}, timeout=5
    ).json()
    assert token["state"] == attempt.state and token["user_id"] == 100001
    assert token["id_token"].count(".") == 2

"""OAuth Mail adapter against the Mail fake over real HTTP (reference §2a). Mail through
VK ID is in test_vkid.py."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from idp.adapters.social.mail import MailOAuthProvider
from idp.domain.social import SocialError
from tests.social.conftest import Round, adapter, person


@pytest.fixture
def mail(fakes, tmp_path):
    return adapter(fakes, "mail", tmp_path)


def test_oauth_mode_is_the_default(mail):
    assert isinstance(mail, MailOAuthProvider)


def test_round_trip_keys_on_id_not_email(mail):
    attempt = Round(mail)
    query = parse_qs(urlsplit(attempt.url()).query)
    assert query["scope"] == ["userinfo"] and query["code_challenge_method"] == ["S256"]
    profile = attempt.complete(person(attempt.url(), "sergey"))
    assert (profile.provider, profile.subject) == ("mail", "100003")
    assert (profile.given_name, profile.family_name) == ("Сергей", "Кузнецов")
    assert profile.email == "s.kuznetsov@example.ru" and profile.email_verified is False


def test_a_person_without_email(mail):
    attempt = Round(mail)
    assert attempt.complete(person(attempt.url(), "anna")).email is None


def test_the_redirect_uri_is_exact_trailing_slash_included(mail):
    attempt = Round(mail)
    attempt.redirect_uri += "/"
    assert requests.get(attempt.url(), timeout=5).status_code == 400


def test_a_wrong_verifier_is_invalid_grant(mail):
    attempt = Round(mail)
    params = person(attempt.url())
    with pytest.raises(SocialError) as info:
        attempt.complete(params, code_verifier="v" * 50)
    assert info.value.kind == "invalid_grant"


def test_a_bad_token_at_userinfo(fakes):
    answer = requests.get(f"{fakes.urls['mail']}/userinfo?access_token=nope", timeout=5)
    assert answer.status_code == 401 and answer.json()["error"] == "invalid_token"

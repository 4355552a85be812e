"""Every provider's full round trip through its fake over real HTTP (issue 9): the real adapter
built from the settings (``build_social_providers``) pointed at the provider's fake, a live
IdP, and a ``requests.Session`` as the browser. Sign-up from a portal's request (the button,
the fake's page where the person picks who they are, the prefilled registration, our own SMS
code), sign-in again in a fresh browser, then another account links the provider's other test
person in «Персональная информация» and unlinks it. On both profiles (SQLite + memory store;
PostgreSQL + Redis)."""

from __future__ import annotations

import html
import re

import pytest
import requests

from tests.idp.test_consent_prompt import exchange
from tests.idp.test_registration_flow import last_code, post_form
from tests.idp.test_social_flows import (
    id_token_claims,
    identities,
    sign_in_with_password,
    unlink,
)
from tests.social.conftest import fake_env
from tests.support import (
    authorize_url,
    callback_params,
    csrf_of,
    follow_local,
    make_client,
    make_user,
    pkce_pair,
)

# (the IdP's provider name, the fake that answers, extra settings, the registration's prefilled
# contact: the phone where the provider gives it, else the e-mail)
PHONE, EMAIL = "+79161234567", "ivan.petrov@example.ru"
CASES = [
    pytest.param(("vkid", "vkid", {}, PHONE), id="vkid"),
    pytest.param(("mail", "mail", {"IDP_SOCIAL_MAIL_MODE": "oauth"}, EMAIL), id="mail-oauth"),
    pytest.param(("mail", "vkid", {"IDP_SOCIAL_MAIL_MODE": "vkid"}, PHONE), id="mail-vkid"),
    pytest.param(("ok", "ok", {}, EMAIL), id="ok"),
    pytest.param(("yandex", "yandex", {}, PHONE), id="yandex"),
    pytest.param(("google", "google", {}, EMAIL), id="google"),
    pytest.param(("facebook", "facebook", {}, EMAIL), id="facebook"),
]

# The fakes' test people (social_fakes.common.IDENTITIES): one signs up, the other is linked.
SIGNS_UP = ("ivan", "100001", "Иван", "Петров")
LINKED = ("olga", "100002", "Ольга", "Смирнова")


@pytest.fixture
def round_trip(make_live, fakes, request):
    """A live IdP whose only provider is the case's real adapter, pointed at its fake; the
    fake accepts exactly the IdP's callback (restored afterwards: the fakes are shared)."""
    name, fake, extra, prefilled = request.param
    if fake == name:
        env = fake_env(fakes, name, **extra)
    else:  # Mail through VK ID: the VK ID application's client, the VK ID host
        env = {
            "IDP_SOCIAL_MAIL_ENABLED": "true",
            "IDP_SOCIAL_MAIL_CLIENT_ID": fakes.configs[fake].client_id,
            "IDP_SOCIAL_MAIL_BASE_URL": fakes.urls[fake],
            **extra,
        }
    live = make_live(**env)
    config = fakes.configs[fake]
    registered = config.redirect_uris
    config.redirect_uris = (f"{live.url}/login/social/{name}/callback",)
    yield live, name, prefilled
    config.redirect_uris = registered


def at_the_provider(http: requests.Session, answer, person: str) -> requests.Response:
    """The browser follows the IdP's redirect to the fake, the person picks ``person`` and
    allows; returns the IdP's answer at its callback."""
    assert answer.status_code in (302, 303), answer.text[:300]
    page_url = answer.headers["Location"]
    page = http.get(page_url)
    assert page.status_code == 200, page.text[:300]
    assert "Разрешить" in page.text and f'value="{person}"' in page.text
    back = http.post(
        page_url, data={"identity": person, "decision": "allow"}, allow_redirects=False
    )
    assert back.status_code in (302, 303), back.text[:300]
    callback = back.headers["Location"]
    assert "/login/social/" in callback and "code=" in callback, callback
    return http.get(callback, allow_redirects=False)


def through_the_button(http, live, client, name, person):
    """From the portal's authorization request, via the sign-in page's button, to the IdP's
    answer at its callback. Returns (the answer, the PKCE verifier)."""
    verifier, challenge = pkce_pair()
    login = follow_local(
        http, live, http.get(authorize_url(live, client, challenge), allow_redirects=False)
    )
    assert "Или войдите с помощью соцсетей:" in login.text
    button = re.search(rf'class="social-button social-{name}" href="([^"]+)"', login.text)
    assert button, login.text
    href = html.unescape(button.group(1))
    assert "interaction=" in href
    pressed = http.get(live.url + href, allow_redirects=False)
    return at_the_provider(http, pressed, person), verifier


@pytest.mark.parametrize("round_trip", CASES, indirect=True)
def test_sign_up_sign_in_link_and_unlink_through_the_providers_fake(round_trip):
    live, name, prefilled = round_trip
    client = make_client(live)
    key, sub, given, family = SIGNS_UP

    # 1. Sign-up: unknown here, so the registration, prefilled from the provider.
    http = requests.Session()
    back, verifier = through_the_button(http, live, client, name, key)
    form = follow_local(http, live, back)
    assert form.status_code == 200 and 'name="family_name"' in form.text, form.text[:500]
    assert f'value="{family}"' in form.text and f'value="{given}"' in form.text
    contact = re.search(r'name="contact"[^>]*value="([^"]*)"', form.text)
    assert contact and contact.group(1) == prefilled
    assert identities(live) == []  # nothing exists before our own confirmation
    sent = post_form(
        http,
        live,
        "/register",
        family_name=family,
        given_name=given,
        contact=PHONE,  # ours to confirm by SMS, as a person would type
        region="Пермский край",
        accept="1",
    )
    assert sent.headers["Location"].endswith("/register/confirm"), sent.text[:500]
    post_form(http, live, "/register/confirm", code=last_code(live, PHONE))
    done = post_form(http, live, "/register/password", skip="1")
    params = callback_params(follow_local(http, live, done))
    claims = id_token_claims(exchange(live, client, params["code"], verifier))
    assert claims["amr"] == ["fed", name]
    user_id = claims["sub"]
    assert identities(live) == [(name, sub, user_id)]
    with live.ctx():
        assert live.services.users.get(user_id).phone_verified

    # 2. Sign-in in a fresh browser: the same account, straight back to the portal.
    again = requests.Session()
    back, verifier = through_the_button(again, live, client, name, key)
    params = callback_params(follow_local(again, live, back))
    claims = id_token_claims(exchange(live, client, params["code"], verifier))
    assert claims["sub"] == user_id and claims["amr"] == ["fed", name]

    # 3. Link: another account (a password) links the provider's other test person.
    other_id, login = make_user(live)
    third = requests.Session()
    sign_in_with_password(third, live, login)
    profile = third.get(f"{live.url}/account/profile")
    assert "Соцсети не привязаны." in profile.text
    started = third.post(
        f"{live.url}/account/profile/social/link",
        data={"csrf_token": csrf_of(profile.text), "provider": name},
        allow_redirects=False,
    )
    back = at_the_provider(third, started, LINKED[0])
    assert f"linked={name}" in back.headers["Location"], back.headers["Location"]
    assert identities(live) == sorted([(name, sub, user_id), (name, LINKED[1], other_id)])
    profile = third.get(live.url + back.headers["Location"].removeprefix(live.url))
    assert "привязан к учётной записи." in profile.text
    assert LINKED[3] in profile.text or LINKED[2] in profile.text

    # 4. Unlink it: the password remains this account's way in; the first is untouched.
    identity_id = re.search(r"/account/profile/social/(\d+)/unlink", profile.text).group(1)
    gone = unlink(third, live, profile, identity_id)
    assert "unlinked=1" in gone.headers["Location"]
    assert identities(live) == [(name, sub, user_id)]
    shown = third.get(f"{live.url}/account/profile")
    assert "Соцсети не привязаны." in shown.text

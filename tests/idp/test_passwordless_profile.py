"""«Персональная информация» of an account made by social sign-up without a password: a fresh
sign-in stands in for the current password («Задать пароль», contact change), a stale one sends
the person to sign in again through the linked network, and unlinking the last network becomes
possible once a password is set. Over HTTP with the twin providers, on SQLite + the memory
store and on PostgreSQL + Redis."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import requests

from idp.services.profile import REAUTH_WINDOW
from tests.idp.test_registration_flow import last_code, outbox, post_form
from tests.idp.test_social_flows import come_back, identities, social_live, start, unlink
from tests.support import csrf_of, submit_login

STRONG = "Зимний-вечер-у-камина"
STALE = "Пароль не задан, поэтому подтвердите, что это вы"


def sign_up_without_password(live, providers, phone, subject="vk-1"):
    """A VK ID sign-up that skips the password step; the browser is signed in."""
    providers["vkid"].person(subject, subject, given_name="Анна", family_name="Соколова")
    http = requests.Session()
    come_back(http, live, "vkid", code=subject, state=start(http, live, "vkid"))
    post_form(
        http,
        live,
        "/register",
        family_name="Соколова",
        given_name="Анна",
        contact=phone,
        region="Пермский край",
        accept="1",
    )
    post_form(http, live, "/register/confirm", code=last_code(live, phone))
    assert post_form(http, live, "/register/password", skip="1").status_code == 303
    with live.ctx():
        user = live.services.users.find_by_login(phone)
        assert user.password_hash is None
        return http, user.id


def set_password(http, live, password, page=None):
    page = page or http.get(f"{live.url}/account/profile")
    return http.post(
        f"{live.url}/account/profile/password",
        data={"csrf_token": csrf_of(page.text), "new_password": password},
        allow_redirects=False,
    )


def events(live, user_id) -> list[str]:
    with live.ctx():
        return [e.event_type for e in live.services.audit.recent(user_id)]


def sign_in_again(http, live, provider, code):
    """«Войти ещё раз через …» on the profile page, through the provider and back."""
    page = http.get(f"{live.url}/account/profile")
    started = http.post(
        f"{live.url}/account/profile/social/reauth",
        data={"csrf_token": csrf_of(page.text), "provider": provider},
        allow_redirects=False,
    )
    assert started.status_code == 303, started.text[:300]
    state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    return come_back(http, live, provider, code=code, state=state)


def test_fresh_sign_in_sets_a_first_password_and_ends_other_sessions(make_live):
    live, providers = social_live(make_live)
    http, user_id = sign_up_without_password(live, providers, "+79995550201")
    other = requests.Session()  # the same person in another browser
    come_back(other, live, "vkid", code="vk-1", state=start(other, live, "vkid"))
    assert other.get(f"{live.url}/account/profile").status_code == 200

    page = http.get(f"{live.url}/account/profile")
    assert "Пароль не задан. Вы входите через соцсеть:" in page.text and "VK ID" in page.text
    assert "Задать пароль" in page.text and "Текущий пароль" not in page.text
    assert "Войти ещё раз через" not in page.text  # just signed in: fresh

    weak = set_password(http, live, "qwerty123", page)
    assert weak.status_code == 400 and "password-error" in weak.text
    with live.ctx():
        assert live.services.users.get(user_id).password_hash is None

    done = set_password(http, live, STRONG, page)
    assert done.status_code == 303 and "saved=password_set" in done.headers["Location"]
    shown = http.get(live.url + done.headers["Location"].removeprefix(live.url))
    assert "Пароль задан." in shown.text and "Изменить пароль" in shown.text
    assert "Текущий пароль" in shown.text and "Пароль не задан" not in shown.text
    assert "Задан пароль" in shown.text  # the security events
    assert "password.set" in events(live, user_id)
    assert "password.changed" not in events(live, user_id)
    assert "задан пароль" in outbox(live, "+79995550201")[-1].body
    # The other browser is signed out; the password now signs in.
    assert other.get(f"{live.url}/account/profile", allow_redirects=False).status_code == 303
    fresh = requests.Session()
    login = fresh.get(f"{live.url}/login")
    assert submit_login(fresh, live, login, "+79995550201", STRONG).status_code == 303

    # With a password, the last network may go.
    identity_id = re.search(r"/account/profile/social/(\d+)/unlink", shown.text).group(1)
    done = unlink(http, live, shown, identity_id)
    assert "unlinked=1" in done.headers["Location"] and identities(live) == []


def test_stale_sign_in_is_refused_until_the_person_signs_in_again(make_live):
    live, providers = social_live(make_live)
    http, user_id = sign_up_without_password(live, providers, "+79995550202")
    live.clock.advance(REAUTH_WINDOW + 60)

    page = http.get(f"{live.url}/account/profile")
    assert "Войти ещё раз через VK ID" in page.text
    refused = set_password(http, live, STRONG, page)
    assert refused.status_code == 400 and STALE in refused.text
    with live.ctx():
        assert live.services.users.get(user_id).password_hash is None
    assert "password.set" not in events(live, user_id)
    # Unlinking the only network stays refused meanwhile.
    identity_id = re.search(r"/account/profile/social/(\d+)/unlink", page.text).group(1)
    assert "social_error=last" in unlink(http, live, page, identity_id).headers["Location"]

    back = sign_in_again(http, live, "vkid", "vk-1")
    assert back.headers["Location"].endswith("/account/profile?reauthenticated=1")
    page = http.get(live.url + back.headers["Location"].removeprefix(live.url))
    assert "Вход подтверждён." in page.text and "Войти ещё раз через" not in page.text
    assert set_password(http, live, STRONG, page).status_code == 303
    assert "password.set" in events(live, user_id)


def test_signing_in_again_with_another_social_account_is_refused(make_live):
    live, providers = social_live(make_live)
    http, user_id = sign_up_without_password(live, providers, "+79995550203")
    providers["vkid"].person("stranger", "vk-2", given_name="Пётр")
    live.clock.advance(REAUTH_WINDOW + 60)

    back = sign_in_again(http, live, "vkid", "stranger")
    assert "social_error=other" in back.headers["Location"]
    page = http.get(live.url + back.headers["Location"].removeprefix(live.url))
    assert "не привязана к вашему личному кабинету" in page.text
    assert "Войти ещё раз через VK ID" in page.text  # still stale: the same session
    assert set_password(http, live, STRONG, page).status_code == 400
    assert identities(live) == [("vkid", "vk-1", user_id)]


def test_contact_change_without_password_needs_a_fresh_sign_in(make_live):
    live, providers = social_live(make_live)
    http, user_id = sign_up_without_password(live, providers, "+79995550204")

    def change(contact):
        page = http.get(f"{live.url}/account/profile")
        return http.post(
            f"{live.url}/account/profile/contact",
            data={"csrf_token": csrf_of(page.text), "contact": contact},
            allow_redirects=False,
        )

    live.clock.advance(REAUTH_WINDOW + 60)
    refused = change("+79995550205")
    assert refused.status_code == 400 and STALE in refused.text
    assert outbox(live, "+79995550205") == []

    sign_in_again(http, live, "vkid", "vk-1")
    started = change("+79995550205")
    assert started.headers["Location"].endswith("/account/profile/contact/confirm")
    confirmed = post_form(
        http, live, "/account/profile/contact/confirm", code=last_code(live, "+79995550205")
    )
    assert "changed=1" in confirmed.headers["Location"]
    with live.ctx():
        assert live.services.users.get(user_id).phone == "+79995550205"


def test_the_passwordless_page_in_english(make_live):
    live, providers = social_live(make_live)
    http, _ = sign_up_without_password(live, providers, "+79995550206")
    http.headers["Accept-Language"] = "en"
    page = http.get(f"{live.url}/account/profile")
    assert "No password is set. You sign in through a social network:" in page.text
    assert "Set a password" in page.text
    live.clock.advance(REAUTH_WINDOW + 60)
    page = http.get(f"{live.url}/account/profile")
    assert "Sign in again with VK ID" in page.text
    refused = set_password(http, live, STRONG, page)
    assert refused.status_code == 400 and "No password is set, so confirm it is you" in refused.text

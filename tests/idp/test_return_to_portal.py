"""A person sent by a portal goes back to it: registration, recovery and the legacy upgrade
started from an authorization request keep it (``idp/services/carried_authorization.py``) and,
once the person is signed in, complete it — consent where it applies — and redirect to the
portal with the code. Without one they end on the IdP's pages; an e-mail link opened in
another browser says how to go back."""

from __future__ import annotations

import re

import jwt
import requests

from idp.services.captcha import _digest
from idp.services.carried_authorization import CarriedAuthorization, carried_by, carry
from tests.idp.test_registration_flow import NEW_PASSWORD, last_code, last_link
from tests.support import (
    authorize_url,
    callback_params,
    csrf_of,
    follow_local,
    make_client,
    make_user,
    pkce_pair,
    submit_login,
)


def _sign_in_page(http, live, client, **params):
    verifier, challenge = pkce_pair()
    url = authorize_url(live, client, challenge, **params)
    page = follow_local(http, live, http.get(url, allow_redirects=False))
    assert page.status_code == 200 and 'name="interaction"' in page.text
    return verifier, page


def _link(page, element_id: str) -> str:
    return re.search(rf'id="{element_id}" href="([^"]+)"', page.text).group(1).replace("&amp;", "&")


def _post(http, live, path, page, **data):
    return http.post(
        f"{live.url}{path}", data={"csrf_token": csrf_of(page.text), **data}, allow_redirects=False
    )


def _register_from(http, live, sign_in, contact):
    """«Регистрация» on the portal's sign-in page, step 1 submitted."""
    href = _link(sign_in, "register-link")
    assert "interaction=" in href
    step1 = http.get(f"{live.url}{href}")
    assert 'name="interaction"' in step1.text and "для входа в" in step1.text
    interaction = re.search(r'name="interaction" value="([^"]+)"', step1.text).group(1)
    return _post(
        http,
        live,
        "/register",
        step1,
        interaction=interaction,
        family_name="Соколова",
        given_name="Анна",
        contact=contact,
        region="Пермский край",
        accept="1",
    )


def _consent(http, live, response):
    page = follow_local(http, live, response)
    if page.status_code == 200 and 'name="decision"' in page.text:
        action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
        page = follow_local(http, live, _post(http, live, action, page, decision="allow"))
    return page


def _code_for(live, client, verifier, response) -> dict:
    params = callback_params(response)
    assert response.headers["Location"].startswith(client.redirect_uri)
    tokens = requests.post(
        f"{live.url}/token",
        auth=(client.client_id, client.secret),
        data={
            "grant_type": "authorization_code",
            "code": params["code"],
            "redirect_uri": client.redirect_uri,
            "code_verifier": verifier,
        },
        timeout=10,
    ).json()
    return jwt.decode(tokens["id_token"], options={"verify_signature": False})


def test_registration_by_phone_goes_back_to_the_portal_after_consent(live):
    client = make_client(live, first_party=False, name="Интернет-магазин")
    http = requests.Session()
    verifier, sign_in = _sign_in_page(http, live, client)
    assert (
        _register_from(http, live, sign_in, "+79995558801")
        .headers["Location"]
        .endswith("/register/confirm")
    )
    confirm = http.get(f"{live.url}/register/confirm")
    _post(http, live, "/register/confirm", confirm, code=last_code(live, "+79995558801"))
    password = http.get(f"{live.url}/register/password")
    done = _post(http, live, "/register/password", password, password=NEW_PASSWORD)
    assert "/authorize/resume/" in done.headers["Location"]
    back = _consent(http, live, done)  # a third-party portal: consent first
    claims = _code_for(live, client, verifier, back)
    assert claims["family_name"] == "Соколова" and claims["aud"] == client.client_id


def test_registration_by_email_link_in_the_same_browser_goes_back(live):
    client = make_client(live, name="Домашнее ТВ")  # first party: no consent page
    http = requests.Session()
    verifier, sign_in = _sign_in_page(http, live, client)
    assert _register_from(http, live, sign_in, "anna.tv@example.ru").status_code == 303
    link = last_link(live, "anna.tv@example.ru")[len(live.url) :]
    _post(http, live, link, http.get(f"{live.url}{link}"))
    password = http.get(f"{live.url}/register/password")
    done = follow_local(
        http, live, _post(http, live, "/register/password", password, password=NEW_PASSWORD)
    )
    assert _code_for(live, client, verifier, done)["email"] == "anna.tv@example.ru"


def test_an_email_link_opened_in_another_browser_says_how_to_go_back(live):
    client = make_client(live, name="Домашнее ТВ")
    http = requests.Session()
    _, sign_in = _sign_in_page(http, live, client)
    _register_from(http, live, sign_in, "anna.other@example.ru")
    other = requests.Session()  # the mail app's browser
    link = last_link(live, "anna.other@example.ru")[len(live.url) :]
    _post(other, live, link, other.get(f"{live.url}{link}"))
    password = other.get(f"{live.url}/register/password")
    done = _post(other, live, "/register/password", password, password=NEW_PASSWORD)
    location = done.headers["Location"]
    assert location.startswith("/account") and "code=" not in location
    home = other.get(f"{live.url}{location}")
    assert 'id="portal-elsewhere"' in home.text and "«Домашнее ТВ»" in home.text
    assert "Регистрация завершена" in home.text


def test_registration_without_a_portal_ends_on_the_main_page(live):
    http = requests.Session()
    step1 = http.get(f"{live.url}/register")
    assert 'name="interaction"' not in step1.text
    _post(
        http,
        live,
        "/register",
        step1,
        family_name="Соколова",
        given_name="Анна",
        contact="+79995558802",
        region="Пермский край",
        accept="1",
    )
    confirm = http.get(f"{live.url}/register/confirm")
    _post(http, live, "/register/confirm", confirm, code=last_code(live, "+79995558802"))
    done = _post(
        http,
        live,
        "/register/password",
        http.get(f"{live.url}/register/password"),
        password=NEW_PASSWORD,
    )
    assert done.headers["Location"].startswith("/account?welcome=1")


def test_recovery_signs_in_then_goes_back_to_the_portal(live):
    sub, phone = make_user(live)
    client = make_client(live)
    http = requests.Session()
    verifier, sign_in = _sign_in_page(http, live, client)
    href = re.search(r'href="(/recover\?interaction=[^"]+)"', sign_in.text).group(1)
    start = http.get(f"{live.url}{href.replace('&amp;', '&')}")
    interaction = re.search(r'name="interaction" value="([^"]+)"', start.text).group(1)
    _post(http, live, "/recover", start, login=phone, interaction=interaction)
    confirm = http.get(f"{live.url}/recover/confirm")
    _post(http, live, "/recover/confirm", confirm, code=last_code(live, phone))
    done = _post(
        http,
        live,
        "/recover/password",
        http.get(f"{live.url}/recover/password"),
        password=NEW_PASSWORD,
    )
    location = done.headers["Location"]
    assert "reset=1" in location and "interaction=" in location
    login = http.get(f"{live.url}{location}")
    assert "Пароль изменён" in login.text
    back = follow_local(http, live, submit_login(http, live, login, phone, NEW_PASSWORD))
    assert _code_for(live, client, verifier, back)["sub"] == sub


def test_the_legacy_upgrade_signs_in_then_goes_back(live):
    from idp.adapters.sql.models import User
    from idp.extensions import db

    sub, phone = make_user(live, family_name="Старова", given_name="Анна")
    with live.ctx():
        import bcrypt

        legacy_hash = bcrypt.hashpw(b"old-cabinet-1", bcrypt.gensalt(4)).decode()
        user = db.session.get(User, sub)
        user.status, user.password_hash, user.legacy_source = "legacy", legacy_hash, "perm-lk"
        db.session.commit()
    client = make_client(live)
    http = requests.Session()
    verifier, sign_in = _sign_in_page(http, live, client)
    assert (
        _register_from(http, live, sign_in, phone).headers["Location"].endswith("/register/legacy")
    )
    page = http.get(f"{live.url}/register/legacy")
    challenge = re.search(r'name="captcha_id" value="([^"]+)"', page.text).group(1)
    with live.ctx():  # the picture's answer, as a person would read it
        live.services.store.set(f"captcha:{challenge}", _digest(challenge, "ABCDE"), 300)
    done = _post(
        http,
        live,
        "/register/legacy",
        page,
        password="old-cabinet-1",
        captcha_id=challenge,
        captcha="ABCDE",
    )
    location = done.headers["Location"]
    assert "upgraded=kept" in location and "interaction=" in location, location
    login = http.get(f"{live.url}{location}")
    assert "сохранены из прежнего личного кабинета" in login.text
    back = follow_local(http, live, submit_login(http, live, login, phone, "old-cabinet-1"))
    assert _code_for(live, client, verifier, back)["sub"] == sub


def test_carried_authorization_survives_the_flow_and_refuses_junk():
    interaction = {
        "params": {"client_id": "shop", "redirect_uri": "https://shop/cb"},
        "client_id": "shop",
        "created_at": 100,
    }
    carried = CarriedAuthorization.from_interaction(interaction)
    payload = carry({"region": "Пермский край"}, carried)
    assert carried_by(payload) == carried and payload["region"] == "Пермский край"
    assert carry({"a": 1}, None) == {"a": 1} and carried_by({"a": 1}) is None
    for junk in (
        None,
        [],
        {**interaction, "client_id": "other"},  # the request's client must be the record's
        {**interaction, "params": {"client_id": "shop", "x": 1}},
        {**interaction, "created_at": "100"},
    ):
        assert CarriedAuthorization.from_interaction(junk) is None


def test_the_self_service_pages_speak_the_sign_ins_language(live):
    client = make_client(live)
    http = requests.Session()
    _, sign_in = _sign_in_page(http, live, client, ui_locales="en")
    assert '<html lang="en">' in sign_in.text
    step1 = http.get(f"{live.url}{_link(sign_in, 'register-link')}")
    assert '<html lang="en">' in step1.text and 'name="interaction"' in step1.text
    recover = re.search(r'href="(/recover\?interaction=[^"]+)"', sign_in.text).group(1)
    assert '<html lang="en">' in http.get(f"{live.url}{recover.replace('&amp;', '&')}").text


def test_a_recovery_link_opened_in_another_browser_says_how_to_go_back(live):
    make_user(live, login="reset.other@example.ru")
    client = make_client(live, name="Домашнее ТВ")
    http = requests.Session()
    _, sign_in = _sign_in_page(http, live, client)
    href = re.search(r'href="(/recover\?interaction=[^"]+)"', sign_in.text).group(1)
    start = http.get(f"{live.url}{href.replace('&amp;', '&')}")
    interaction = re.search(r'name="interaction" value="([^"]+)"', start.text).group(1)
    _post(http, live, "/recover", start, login="reset.other@example.ru", interaction=interaction)
    other = requests.Session()
    link = last_link(live, "reset.other@example.ru")[len(live.url) :]
    _post(other, live, link, other.get(f"{live.url}{link}"))
    done = _post(
        other,
        live,
        "/recover/password",
        other.get(f"{live.url}/recover/password"),
        password=NEW_PASSWORD,
    )
    location = done.headers["Location"]
    assert "reset=1" in location and "interaction=" not in location
    login = other.get(f"{live.url}{location}")
    assert 'id="portal-elsewhere"' in login.text and "«Домашнее ТВ»" in login.text

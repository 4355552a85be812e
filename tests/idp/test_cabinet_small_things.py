"""What a customer notices on the pages: apps with what they may see (not raw scope names),
sessions as «Chrome, Linux» with address and time, a dead confirmation link with a way on,
and the legacy upgrade saying what happens to the names typed in step 1."""

from __future__ import annotations

import re

import requests

from idp.adapters.sql.models import User
from idp.services.captcha import _digest
from tests.idp.test_registration_flow import NEW_PASSWORD, last_link, step1
from tests.support import (
    PASSWORD,
    authorize_url,
    csrf_of,
    make_client,
    make_user,
    pkce_pair,
    sign_in_and_authorize,
    submit_login,
)

CHROME_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def _signed_in(live, login, user_agent=CHROME_LINUX) -> requests.Session:
    http = requests.Session()
    http.headers["User-Agent"] = user_agent
    response = submit_login(http, live, http.get(f"{live.url}/login"), login, PASSWORD)
    assert response.status_code in (302, 303)
    return http


def test_apps_show_what_they_may_see_in_russian_and_english(live):
    _, login = make_user(live)
    client = make_client(live, first_party=False, name="Интернет-магазин")
    http = _signed_in(live, login)
    _, challenge = pkce_pair()
    url = authorize_url(live, client, challenge, scope="openid profile email phone")
    assert sign_in_and_authorize(http, live, url, login, PASSWORD).status_code == 303
    home = http.get(f"{live.url}/account")
    apps = re.search(r'<ul class="apps">(.*?)</ul>', home.text, re.S).group(1)
    assert "Интернет-магазин" in apps
    assert "Фамилия, имя и отчество" in apps and "Адрес электронной почты" in apps
    assert "Номер мобильного телефона" in apps
    assert "email, openid" not in apps and "(openid" not in apps
    english = http.get(f"{live.url}/account?lang=en")
    assert "Your e-mail address" in english.text and "Your full name" in english.text


def test_sessions_name_the_browser_the_address_and_the_time(live):
    _, login = make_user(live)
    http = _signed_in(live, login)
    _signed_in(live, login, user_agent="Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Firefox/133.0")
    page = http.get(f"{live.url}/account/profile")
    devices = re.findall(r'<span class="device">([^<]+)</span>', page.text)
    assert sorted(devices) == ["Chrome, Linux", "Firefox, Linux"]
    assert "Mozilla/5.0" not in page.text
    assert "127.0.0.1" in page.text and re.search(r"\d\d\.\d\d\.\d{4} \d\d:\d\d", page.text)


def test_a_used_link_offers_a_way_on(live):
    http = requests.Session()
    step1(http, live, "way.on@example.ru")
    link = last_link(live, "way.on@example.ru")
    page = http.get(link)
    http.post(link, data={"csrf_token": csrf_of(page.text)})
    password = http.get(f"{live.url}/register/password")
    http.post(
        f"{live.url}/register/password",
        data={"csrf_token": csrf_of(password.text), "password": NEW_PASSWORD},
    )
    used = requests.get(link)
    assert "недействительна или устарела" in used.text and 'id="way-on"' in used.text
    assert 'href="/login"' in used.text and 'href="/register"' in used.text
    assert "Получить новую ссылку" in used.text
    dead = requests.get(f"{live.url}/recover/{'x' * 43}")
    assert 'id="way-on"' in dead.text and "Запросить новую ссылку" in dead.text
    assert 'href="/recover"' in dead.text


def _legacy_user(live, phone: str) -> str:
    import bcrypt

    from idp.extensions import db

    sub, _ = make_user(live, login=phone, family_name="Старова", given_name="Анна")
    with live.ctx():
        user = db.session.get(User, sub)
        user.status, user.legacy_source = "legacy", "perm-lk"
        user.password_hash = bcrypt.hashpw(b"old-cabinet-1", bcrypt.gensalt(4)).decode()
        db.session.commit()
    return sub


def _upgrade(live, phone: str, **extra):
    http = requests.Session()
    assert step1(http, live, phone).headers["Location"].endswith("/register/legacy")
    page = http.get(f"{live.url}/register/legacy")
    assert "останутся такими, как в прежнем личном кабинете" in page.text
    assert "Соколова Анна Игоревна" in page.text  # what was typed, never the imported names
    assert "Старова" not in page.text
    challenge = re.search(r'name="captcha_id" value="([^"]+)"', page.text).group(1)
    with live.ctx():
        live.services.store.set(f"captcha:{challenge}", _digest(challenge, "ABCDE"), 300)
    return http.post(
        f"{live.url}/register/legacy",
        data={
            "csrf_token": csrf_of(page.text),
            "password": "old-cabinet-1",
            "captcha_id": challenge,
            "captcha": "ABCDE",
            **extra,
        },
        allow_redirects=False,
    )


def test_the_legacy_upgrade_keeps_the_imported_names_and_says_so(live):
    sub = _legacy_user(live, "+79995556601")
    done = _upgrade(live, "+79995556601")
    assert "upgraded=kept" in done.headers["Location"]
    assert "сохранены из прежнего" in requests.get(f"{live.url}{done.headers['Location']}").text
    with live.ctx():
        assert live.services.users.get(sub).family_name == "Старова"


def test_the_legacy_upgrade_can_take_the_names_typed_in_step_one(live):
    sub = _legacy_user(live, "+79995556602")
    done = _upgrade(live, "+79995556602", use_typed_names="1")
    assert "upgraded=typed" in done.headers["Location"]
    with live.ctx():
        user = live.services.users.get(sub)
        assert (user.family_name, user.given_name, user.middle_name) == (
            "Соколова",
            "Анна",
            "Игоревна",
        )
        assert user.status == "active"


def test_every_page_names_an_icon_that_is_served(live):
    """Without one the browser asks for /favicon.ico on every page and logs a 404."""
    page = requests.get(f"{live.url}/login")
    icon = re.search(r'<link rel="icon" type="image/svg\+xml" href="([^"]+)"', page.text)
    assert icon, "no icon link"
    served = requests.get(live.url + icon.group(1))
    assert served.status_code == 200 and served.headers["Content-Type"].startswith("image/svg")
    assert "<svg" in served.text

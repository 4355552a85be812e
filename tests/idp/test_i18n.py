"""The pages' language: Russian by default, English on request (``?lang``, the client's
``ui_locales``, the ``elk_lang`` cookie, Accept-Language), over real HTTP; the English catalog
covers every message of the pages; phone numbers are shown as people write them."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from flask import render_template

from idp.web.filters import format_phone
from tests.support import (
    PASSWORD,
    authorize_url,
    csrf_of,
    follow_local,
    make_client,
    make_user,
    pkce_pair,
    submit_login,
)

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "idp/translations/en/LC_MESSAGES/messages.po"
CYRILLIC = re.compile(r"[\u0400-\u04ff]+")
# Cyrillic an English page may show: the switch back to Russian.
ALLOWED = {"Русский"}
EN_PAGES = ("/login", "/register", "/recover", "/legal/terms", "/legal/privacy", "/logged-out")


def html_lang(page: requests.Response) -> str:
    return re.search(r'<html lang="([^"]+)"', page.text).group(1)


def visible_cyrillic(html: str) -> set[str]:
    """Cyrillic words a person reads on the page: its text (title included) and the texts in
    placeholder, alt, title and aria-label attributes. The logo letter is a picture; the
    regions' option values are data the server matches (the list is Russian-only)."""
    html = re.sub(r'<span class="logo"[^>]*>.</span>', "", html)
    attributes = re.findall(r'(?:placeholder|alt|title|aria-label)="([^"]*)"', html)
    text = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    words = set(CYRILLIC.findall(unescape(" ".join([text, *attributes]))))
    return words - ALLOWED


def assert_english(page: requests.Response) -> None:
    assert page.status_code < 500, page.status_code
    assert html_lang(page) == "en", page.url
    assert not visible_cyrillic(page.text), (page.url, visible_cyrillic(page.text))


def lang_cookie(response: requests.Response) -> str:
    cookies = [c for c in response.raw.headers.getlist("Set-Cookie") if c.startswith("elk_lang=")]
    assert len(cookies) == 1, response.raw.headers.getlist("Set-Cookie")
    return cookies[0]


# --- choosing the language ----------------------------------------------------------------------


def test_russian_by_default(live):
    page = requests.get(f"{live.url}/login")
    assert html_lang(page) == "ru"
    assert "<title>Авторизация — Ростелеком</title>" in page.text
    for label in ("Логин", "Пароль", "Запомнить меня", "Войти", "Регистрация"):
        assert label in page.text
    assert 'href="/login?lang=en"' in page.text and ">English</a>" in page.text
    assert "elk_lang" not in page.headers.get("Set-Cookie", "")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("en", "en"),
        ("en-GB,en;q=0.9", "en"),
        ("ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", "ru"),
        ("de-DE,fr;q=0.8", "ru"),  # nothing we have: the default
        ("de-DE,en;q=0.5", "en"),
    ],
)
def test_accept_language_picks_the_best_match(live, header, expected):
    page = requests.get(f"{live.url}/login", headers={"Accept-Language": header})
    assert html_lang(page) == expected
    if expected == "en":
        assert "<title>Sign in — Rostelecom</title>" in page.text
        for label in ("Sign in", "Password", "Remember me", "Login", "Create an account"):
            assert label in page.text
        assert 'href="/login?lang=ru"' in page.text and ">Русский</a>" in page.text


def test_explicit_choice_is_remembered_in_a_cookie(live):
    http = requests.Session()
    chosen = http.get(f"{live.url}/register?lang=en", headers={"Accept-Language": "ru"})
    assert html_lang(chosen) == "en" and "Create an account" in chosen.text
    cookie = lang_cookie(chosen)
    assert cookie.startswith("elk_lang=en;")
    for attribute in ("HttpOnly", "SameSite=Lax", "Max-Age=31536000", "Path=/"):
        assert attribute in cookie
    assert "Secure" not in cookie  # the issuer is http://127.0.0.1 here

    # It sticks, over the browser's Accept-Language; ?lang=ru switches back.
    assert html_lang(http.get(f"{live.url}/login", headers={"Accept-Language": "ru"})) == "en"
    back = http.get(f"{live.url}/login?lang=ru", headers={"Accept-Language": "en"})
    assert html_lang(back) == "ru" and lang_cookie(back).startswith("elk_lang=ru;")
    assert html_lang(http.get(f"{live.url}/recover", headers={"Accept-Language": "en"})) == "ru"


def test_unknown_lang_is_ignored(live):
    page = requests.get(f"{live.url}/login?lang=de")
    assert html_lang(page) == "ru" and "elk_lang" not in page.headers.get("Set-Cookie", "")


def test_cookie_is_secure_when_the_issuer_is_https(make_live):
    live = make_live(IDP_ISSUER="https://lk.example.ru")
    response = requests.get(f"{live.url}/login?lang=en")
    assert "; Secure" in lang_cookie(response)


def test_ui_locales_of_the_authorization_request(live):
    """OIDC Core §3.1.2.1: the client's ``ui_locales`` outranks the cookie; an explicit switch
    on the login page outranks ``ui_locales`` for the rest of that sign-in."""
    client = make_client(live, name="Partner Portal")
    _, login = make_user(live)
    http = requests.Session()
    http.cookies.set("elk_lang", "ru", domain="127.0.0.1", path="/")
    _, challenge = pkce_pair()
    url = authorize_url(live, client, challenge, ui_locales="fr-CA en-GB ru")
    page = follow_local(http, live, http.get(url, allow_redirects=False))
    assert "/login?interaction=" in page.url
    assert_english(page)
    assert "Sign in" in page.text and "Password" in page.text and "Remember me" in page.text

    # A wrong password: the error is English too.
    failed = submit_login(http, live, page, login, "wrong-password-1")
    assert html_lang(failed) == "en" and "Incorrect login or password." in failed.text

    # The switch keeps the interaction, and the sign-in keeps the choice.
    switch = re.search(r'<a href="([^"]+)" lang="ru"', page.text).group(1).replace("&amp;", "&")
    uid = parse_qs(urlsplit(page.url).query)["interaction"][0]
    assert parse_qs(urlsplit(switch).query) == {"interaction": [uid], "lang": ["ru"]}
    russian = http.get(live.url + switch)
    assert html_lang(russian) == "ru" and "Авторизация" in russian.text
    http.cookies.set("elk_lang", "en", domain="127.0.0.1", path="/")
    again = submit_login(http, live, russian, login, "wrong-password-2")
    assert html_lang(again) == "ru" and "Неверный логин или пароль." in again.text


def test_consent_page_in_english(live):
    client = make_client(live, first_party=False, name="Partner Portal")
    _, login = make_user(live, family_name="Smith", given_name="John")
    http = requests.Session()
    _, challenge = pkce_pair()
    url = authorize_url(live, client, challenge, ui_locales="en")
    page = follow_local(http, live, http.get(url, allow_redirects=False))
    consent = follow_local(http, live, submit_login(http, live, page, login, PASSWORD))
    assert 'name="decision"' in consent.text
    assert_english(consent)
    for text in ("Access to your data", "Your e-mail address", "Allow", "Deny"):
        assert text in consent.text
    assert "The application “Partner Portal” requests:" in unescape(consent.text)


# --- English pages have no Russian left -----------------------------------------------------------


def test_english_pages_have_no_russian_left(live):
    http = requests.Session()
    http.headers["Accept-Language"] = "en"
    for path in EN_PAGES:
        assert_english(http.get(f"{live.url}{path}"))
    assert_english(http.get(f"{live.url}/no-such-page"))

    # Step 2 of a registration by phone: the code page.
    page = http.get(f"{live.url}/register")
    started = http.post(
        f"{live.url}/register",
        data={
            "csrf_token": csrf_of(page.text),
            "family_name": "Соколова",
            "given_name": "Анна",
            "contact": "+7 999 555-77-01",
            "region": "Пермский край",
            "accept": "1",
        },
    )
    assert started.url.endswith("/register/confirm")
    assert_english(started)
    assert "Change the number" in started.text and 'href="/register"' in started.text
    wrong = http.post(started.url, data={"csrf_token": csrf_of(started.text), "code": "000000"})
    assert wrong.status_code == 400 and "Incorrect code. Attempts left: 4." in wrong.text
    assert_english(wrong)


def test_signed_in_pages_in_english(live):
    _, login = make_user(live, login="+79995553900", family_name="Smith", given_name="John")
    http = requests.Session()
    http.headers["Accept-Language"] = "en"
    page = http.get(f"{live.url}/login")
    assert submit_login(http, live, page, login, PASSWORD).status_code == 303
    account = http.get(f"{live.url}/account")
    assert_english(account)
    assert "Personal Account" in account.text
    profile = http.get(f"{live.url}/account/profile")
    assert_english(profile)
    weak = http.post(
        f"{live.url}/account/profile/password",
        data={
            "csrf_token": csrf_of(profile.text),
            "current_password": PASSWORD,
            "new_password": "qwerty123",
        },
    )
    assert weak.status_code == 400 and "This password is too common" in weak.text
    assert_english(weak)
    # The switch on a page that answers only POST leads to the page with that form.
    assert 'href="/account/profile?lang=ru"' in weak.text


def test_russian_password_reasons_are_the_policy_messages(live):
    _, login = make_user(live)
    http = requests.Session()
    page = http.get(f"{live.url}/login")
    submit_login(http, live, page, login, PASSWORD)
    profile = http.get(f"{live.url}/account/profile")
    short = http.post(
        f"{live.url}/account/profile/password",
        data={
            "csrf_token": csrf_of(profile.text),
            "current_password": PASSWORD,
            "new_password": "abc",
        },
    )
    assert "Пароль должен содержать не менее 8 символов" in short.text


TEMPLATES = ROOT / "idp/web/templates"
# Data for every page template; all Latin, so any Cyrillic on an English page is ours.
USER = SimpleNamespace(
    id="u1",
    phone="+79995553900",
    email="john@example.com",
    family_name="Smith",
    given_name="John",
    middle_name=None,
    region="Perm",
)
CONTEXT = {
    "user": USER,
    "consents": [
        (SimpleNamespace(scopes=["openid"]), SimpleNamespace(name="Portal", client_id="c1"))
    ],
    "sessions": [SimpleNamespace(id="s1", user_agent=None)],
    "current_sid": "s1",
    "welcome": "1",
    "saved": "password",
    "changed": "1",
    "link_sent": "j***@example.com",
    "contact_error": "x",
    "password_error": "x",
    "client_name": "Portal",
    "scopes": [("openid", "id")],
    "uid": "i1",
    "interaction": "i1",
    "login": "",
    "notice": None,
    "error": None,
    "form": {},
    "errors": {},
    "regions": [],
    "captcha": {"id": "c", "src": "data:image/png;base64,"},
    "masked": "+7999***3900",
    "wait": 30,
    "action": "/register/confirm",
    "resend": "/register/resend",
    "change_url": "/register",
    "token": "t",
    "valid": True,
    "params": {"state": "s"},
    "messages": [],
    "message": "x",
    "detail": None,
    "status": 400,
    "version": "2026-01",
    # the cabinet's billing accounts and attachment wizard
    "accounts": [
        SimpleNamespace(
            number="159000000001", region="Perm", services=("home_internet",), attached_at=1
        )
    ],
    "flow": SimpleNamespace(
        flow_id="f1",
        state="attached",
        service_type="home_internet",
        account=SimpleNamespace(number="159000000001", region="Perm"),
        refusal_reason=None,
    ),
    "progress": [("Billing account details", "done"), ("Result", "current")],
    "number": "159000000001",
    "chosen": "home_internet",
    "typed": {"family_name": "Sokolova", "given_name": "Anna", "middle_name": None},
}


def page_templates() -> list[str]:
    return sorted(
        str(path.relative_to(TEMPLATES))
        for path in TEMPLATES.rglob("*.html")
        if path.parts[len(TEMPLATES.parts)] != "messages" and not path.name.startswith("_")
    )


def test_every_page_template_renders_in_both_languages(live):
    assert len(page_templates()) > 20
    for name in page_templates():
        with live.app.test_request_context("/?lang=ru"):
            russian = render_template(name, **CONTEXT)
        with live.app.test_request_context("/?lang=en"):
            english = render_template(name, **CONTEXT)
        assert '<html lang="ru">' in russian and CYRILLIC.search(russian), name
        assert '<html lang="en">' in english, name
        assert not visible_cyrillic(english), (name, visible_cyrillic(english))
    # The legacy page's error offers recovery, in English too.
    with live.app.test_request_context("/?lang=en"):
        legacy = render_template("register/legacy.html", **{**CONTEXT, "error": "wrong_password"})
    assert "Incorrect password." in legacy and "Reset your password</a>" in legacy
    # Values put into a translated message are escaped like any other value.
    with live.app.test_request_context("/?lang=en"):
        consent = render_template("consent.html", **{**CONTEXT, "client_name": "<b>&</b>"})
    assert "The application “&lt;b&gt;&amp;&lt;/b&gt;” requests:" in consent


def test_catalog_translates_every_message_of_the_pages():
    """Every message extracted as `make messages` extracts it has a reviewed (not fuzzy)
    English translation with the same placeholders."""
    method_map, options_map = parse_mapping_cfg((ROOT / "babel.cfg").open())
    extracted = {
        message
        for _, _, message, _, _ in extract_from_dir(
            str(ROOT), method_map, options_map, keywords={**DEFAULT_KEYWORDS, "lazy_gettext": None}
        )
    }
    with CATALOG.open("rb") as f:
        catalog = read_po(f, locale="en")
    assert extracted, "nothing extracted: babel.cfg does not match the sources"
    missing = [m for m in extracted if not catalog.get(m) or not catalog.get(m).string]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not missing, f"untranslated: {missing}"
    assert not fuzzy, f"fuzzy (not compiled): {fuzzy}"
    placeholders = re.compile(r"%\(\w+\)s|<[^>]+>")
    for message in catalog:
        if message.id:
            assert sorted(placeholders.findall(message.id)) == sorted(
                placeholders.findall(message.string)
            ), message.id
            assert not CYRILLIC.search(message.string), message.id


# --- phone numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("+79995553900", "+7 999 555-39-00"),
        ("+74951234567", "+7 495 123-45-67"),
        ("+7999***3900", "+7999***3900"),  # a masked number stays as it is
        ("ivan@example.ru", "ivan@example.ru"),
        ("+7999", "+7999"),
        (None, ""),
    ],
)
def test_phone_filter(value, shown):
    assert format_phone(value) == shown


def test_phone_numbers_are_shown_formatted(live):
    _, login = make_user(live, login="+79995553900")
    http = requests.Session()
    submit_login(http, live, http.get(f"{live.url}/login"), login, PASSWORD)
    for path in ("/account", "/account/profile"):
        page = http.get(f"{live.url}{path}")
        assert "+79995553900" not in page.text
        assert re.search(r'class="login-link"[^>]*>\+7 999 555-39-00</a>', page.text), path
        assert re.search(r"<dd[^>]*>\+7 999 555-39-00</dd>", page.text), path

"""Social sign-up and sign-in in a real headless Chromium, through the providers' faithful
fakes over real HTTP (``social_fakes``): from a client's authorization request, the sign-in
page's button, the fake's page where the person picks who they are, our own SMS code (read
from ``/dev/outbox``), back to the client with a code — then, in a fresh browser, the same
button signs the same account in. VK ID and Yandex ID; and Google naming the e-mail of an
existing account, linked only after that account's password.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest

from social_fakes import server
from tests.e2e.conftest import RESULTS, launch_chromium
from tests.idp.test_consent_prompt import exchange
from tests.social.conftest import fake_env
from tests.support import PASSWORD, authorize_url, make_client, make_user, pkce_pair

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("profile", ["embedded"], indirect=True),
]

CLIENT_CALLBACK = "https://rp.example.com/cb"


@pytest.fixture(scope="module")
def browser():
    with launch_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def fakes():
    running = server.start(server.default_configs(["http://127.0.0.1:9/{name}"]))
    yield running
    running.stop()


@pytest.fixture
def live(make_live, fakes):
    env = {**fake_env(fakes, "vkid"), **fake_env(fakes, "yandex"), **fake_env(fakes, "google")}
    started = make_live(**env)
    for name in ("vkid", "yandex", "google"):
        # The fakes accept exactly the registered redirect URIs: the IdP's callbacks.
        fakes.configs[name].redirect_uris = (f"{started.url}/login/social/{name}/callback",)
    return started


def expect(target):
    from playwright.sync_api import expect as pw_expect

    return pw_expect(target)


def new_page(browser):
    context = browser.new_context(locale="ru-RU", viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(15_000)
    # The client's redirect URI is not served here: the browser stops there with the code.
    page.route(f"{CLIENT_CALLBACK}*", lambda route: route.fulfill(status=200, body="portal"))
    return context, page


def sms_code(context, live, phone: str) -> str:
    live.drain()
    tab = context.new_page()
    try:
        tab.goto(f"{live.url}/dev/outbox")
        rows = tab.locator(f'tr.message[data-recipient="{phone}"]')
        expect(rows.first).to_be_visible()
        return re.search(r"\b(\d{6})\b", rows.first.inner_text()).group(1)
    finally:
        tab.close()


def at_provider(page, live, client, label: str, person: str):
    """From the client's authorization request to the provider's answer at our callback."""
    verifier, challenge = pkce_pair()
    page.goto(authorize_url(live, client, challenge))
    expect(page.get_by_role("heading", name="Авторизация")).to_be_visible()
    expect(page.get_by_text("Или войдите с помощью соцсетей:")).to_be_visible()
    page.get_by_role("link", name=label, exact=True).click()
    page.get_by_label(re.compile(person)).check()
    page.get_by_role("button", name="Разрешить").click()
    return verifier


def code_at_client(page) -> str:
    page.wait_for_url(f"{CLIENT_CALLBACK}*")
    query = parse_qs(urlsplit(page.url).query)
    return query["code"][0]


def amr_of(live, client, code, verifier) -> tuple[str, list[str]]:
    tokens = exchange(live, client, code, verifier)
    payload = tokens["id_token"].split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims["sub"], claims["amr"]


@pytest.mark.parametrize(
    ("provider", "label", "person", "phone", "family"),
    [
        ("vkid", "Войти через VK ID", "Ольга Смирнова", "+79167654321", "Смирнова"),
        ("yandex", "Войти через Яндекс ID", "Иван Петров", "+79161234567", "Петров"),
    ],
)
def test_sign_up_then_sign_in_through_the_providers_fake(
    live, browser, provider, label, person, phone, family
):
    client = make_client(live, redirect_uris=[CLIENT_CALLBACK])
    context, page = new_page(browser)
    try:
        verifier = at_provider(page, live, client, label, person)
        # Unknown here: registration, prefilled from the provider.
        expect(page.get_by_role("heading", name="Регистрация")).to_be_visible()
        expect(page.get_by_label("Фамилия")).to_have_value(family)
        expect(page.get_by_label("Контактные данные")).to_have_value(phone)
        page.get_by_label("Регион").press_sequentially("Пермский край")
        page.get_by_role("button", name="Продолжить").click()
        expect(page.get_by_role("heading", name="Подтвердите операцию")).to_be_visible()
        page.get_by_label("Код из SMS").fill(sms_code(context, live, phone))
        page.get_by_role("button", name="Подтвердить", exact=True).click()
        RESULTS.mkdir(exist_ok=True)
        page.screenshot(path=str(RESULTS / f"social-{provider}-password.png"), full_page=True)
        page.get_by_role("button", name=re.compile("Продолжить без пароля")).click()
        sub, amr = amr_of(live, client, code_at_client(page), verifier)
        assert amr == ["fed", provider]
    finally:
        context.close()

    # A fresh browser: the same button signs the same account in, straight to the client.
    context, page = new_page(browser)
    try:
        verifier = at_provider(page, live, client, label, person)
        again, amr = amr_of(live, client, code_at_client(page), verifier)
        assert again == sub and amr == ["fed", provider]
        page.goto(f"{live.url}/account/profile")
        expect(page.get_by_text(re.compile("вход через")).first).to_be_visible()
        page.screenshot(path=str(RESULTS / f"social-{provider}-profile.png"), full_page=True)
    finally:
        context.close()


def test_google_email_of_an_existing_account_links_only_after_its_password(live, browser):
    """Checklist item 40 in the browser: Google vouches for the e-mail, an account holds it;
    nothing is merged until the person gives that account's password."""
    owner, _ = make_user(live, "ivan.petrov@example.ru")
    client = make_client(live, redirect_uris=[CLIENT_CALLBACK])
    context, page = new_page(browser)
    try:
        verifier = at_provider(page, live, client, "Войти через Google", "Иван Петров")
        expect(page.get_by_role("heading", name="У вас уже есть учётная запись")).to_be_visible()
        page.get_by_label("Пароль от учётной записи ЕЛК").fill("не-тот-пароль")
        page.get_by_role("button", name="Подтвердить и привязать").click()
        expect(page.get_by_role("alert")).to_have_text("Неверный пароль.")
        page.get_by_label("Пароль от учётной записи ЕЛК").fill(PASSWORD)
        page.get_by_role("button", name="Подтвердить и привязать").click()
        sub, amr = amr_of(live, client, code_at_client(page), verifier)
        assert sub == owner and amr == ["fed", "google"]
    finally:
        context.close()

"""Single sign-on made visible, in a real headless Chromium: two demo portals (demo_portals/)
as real HTTP servers, each a registered OIDC client of a real IdP, reading billing accounts
from a real linking service. Sign in on «Интернет-магазин»; «Домашнее ТВ» signs the person in
without a password; signing out of one (RP-initiated logout) signs them out of both
(back-channel logout, delivered over HTTP for real)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import pytest
from werkzeug.serving import make_server

from demo_portals import create_app
from demo_portals.config import load_settings
from elk_proto.linking.v1 import linking_pb2 as pb
from idp.adapters.logout_http import HttpLogoutNotifier
from linking_service.billing_demo import load_demo
from tests.e2e.conftest import RESULTS
from tests.linking_service.conftest import CHEAP, linking_databases, make_linking  # noqa: F401
from tests.support import LazyApp, make_client, make_user

pytestmark = pytest.mark.browser

DEMO_LOGIN = "+79990000001"
DEMO_PASSWORD = "Демо-пароль-2026"
DEMO_ACCOUNT = "159000000001"
SHOTS = RESULTS / "sso-portals"
GREETING = "Здравствуйте, Мария Петровна!"


@pytest.fixture
def live(make_live):
    """The IdP, telling the portals about logout over HTTP for real."""
    return make_live(notifier=HttpLogoutNotifier(timeout=5))


@dataclass
class RunningPortal:
    url: str
    app: object
    server: object
    thread: threading.Thread


@pytest.fixture
def portals(live, make_linking):  # noqa: F811
    """Both portals on free loopback ports, registered as the IdP's demo clients are."""
    linking = make_linking()
    started: dict[str, RunningPortal] = {}
    holders = {key: LazyApp() for key in ("shop", "tv")}
    servers = {
        key: make_server("127.0.0.1", 0, holder, threaded=True) for key, holder in holders.items()
    }
    env = {"PORTAL_ISSUER": live.url, "PORTAL_LINKING_TARGET": linking.target}
    for key, server in servers.items():
        env[f"PORTAL_{key.upper()}_PORT"] = str(server.server_port)
    for key, server in servers.items():
        base = load_settings(key, env)
        client = make_client(
            live,
            name=base.title,
            redirect_uris=[base.redirect_uri],
            post_logout_redirect_uris=[base.post_logout_redirect_uri],
            backchannel_logout_uri=base.backchannel_logout_uri,
            scopes=["openid", "profile", "linking"],
        )
        settings = base.with_(client_id=client.client_id, client_secret=client.secret)
        holders[key].app = app = create_app(settings)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        started[key] = RunningPortal(settings.base_url, app, server, thread)
    yield linking, started
    for running in started.values():
        running.server.shutdown()
        running.thread.join(5)
        running.app.extensions["portal"].linking.close()


def _demo_user_with_account(live, linking) -> str:
    """The demo user, and the demo billing data with her account attached the way the IdP
    attaches it at "account confirmed" (AutoAttach: names, region, a confirmed phone)."""
    sub, _ = make_user(
        live,
        login=DEMO_LOGIN,
        password=DEMO_PASSWORD,
        family_name="Иванова",
        given_name="Мария",
        middle_name="Петровна",
    )
    load_demo(linking.sessions, CHEAP)
    response = linking.stub.AutoAttach(
        pb.AutoAttachRequest(
            request_id=f"sso-{sub}",
            subject=sub,
            family_name="Иванова",
            given_name="Мария",
            middle_name="Петровна",
            region="Пермский край",
            confirmed_phones=[DEMO_LOGIN],
        ),
        metadata=linking.auth(linking.service_token("linking:auto")),
    )
    assert [a.number for a in response.attached] == [DEMO_ACCOUNT]
    return sub


def _shoot(page, name: str) -> None:
    """The page at desktop and phone widths (kept as artefacts, looked at by a person)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((1280, 800), (375, 740)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})


def _wait_signed_out(page, url: str, timeout: float = 15.0) -> None:
    """Reload ``url`` until it shows the signed-out home page: the back-channel logout may be
    delivered after the logout request has been answered (e.g. by an outbox worker)."""
    deadline = time.monotonic() + timeout
    while True:
        page.goto(url)
        if page.get_by_role("link", name="Войти через ЕЛК").count() == 1:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} still shows a signed-in page after {timeout}s")
        time.sleep(0.1)


def _claim(page, label: str) -> str:
    return page.locator(f"dl.claims dt:text-is('{label}') + dd").inner_text()


def test_sign_in_once_for_two_portals_and_out_of_both(live, portals, chromium):
    from playwright.sync_api import expect

    linking, running = portals
    shop, tv = running["shop"], running["tv"]
    sub = _demo_user_with_account(live, linking)
    context = chromium.new_context(locale="ru-RU", viewport={"width": 1280, "height": 800})
    page = context.new_page()
    idp_pages: list[str] = []
    # Every page the browser asks of the IdP, redirects included.
    page.on(
        "request",
        lambda r: (
            idp_pages.append(r.url)
            if r.is_navigation_request() and r.url.startswith(live.url)
            else None
        ),
    )

    # Portal A: «Войти через ЕЛК», the IdP's sign-in page, back signed in.
    page.goto(shop.url + "/")
    expect(page.get_by_text("Демонстрационный портал")).to_be_visible()
    expect(page.get_by_role("heading", name="Интернет-магазин")).to_be_visible()
    _shoot(page, "01-shop-signed-out")
    page.get_by_role("link", name="Войти через ЕЛК").click()
    expect(page.get_by_role("heading", name="Авторизация")).to_be_visible()
    expect(page.get_by_text("для входа в «Интернет-магазин»")).to_be_visible()
    page.get_by_label("Логин").fill(DEMO_LOGIN)
    page.get_by_label("Пароль").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Войти").click()
    expect(page.get_by_role("heading", name=GREETING)).to_be_visible()
    assert page.url.startswith(shop.url)
    assert _claim(page, "Идентификатор в ЕЛК (sub)") == sub
    assert _claim(page, "Фамилия") == "Иванова"
    assert _claim(page, "Способы входа (amr)") == "pwd"
    assert _claim(page, "Время входа (auth_time)").endswith("UTC")
    shop_sid = _claim(page, "Сеанс ЕЛК (sid)")
    assert shop_sid
    # The billing account, read from the linking service with the portal's access token.
    row = page.locator("table.accounts tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator("td.number")).to_have_text(DEMO_ACCOUNT)
    expect(row).to_contain_text("Пермский край")
    expect(row).to_contain_text("Домашний Интернет, Домашний телефон")
    token = page.locator("dl.token")
    expect(token.locator("dt:text-is('Получатель токена доступа (aud)') + dd")).to_have_text(
        "urn:elk:linking-service"
    )
    expect(token.locator("dt:text-is('Права токена (scope)') + dd")).to_contain_text("linking")
    _shoot(page, "02-shop-signed-in")
    signed_in_at = _claim(page, "Время входа (auth_time)")

    # Portal B: the same person, no password asked.
    idp_pages.clear()
    page.goto(tv.url + "/")
    expect(page.get_by_role("heading", name="Домашнее ТВ")).to_be_visible()
    page.get_by_role("link", name="Войти через ЕЛК").click()
    expect(page.get_by_role("heading", name=GREETING)).to_be_visible()
    assert page.url.startswith(tv.url)
    # One trip through /authorize, straight back with a code: no sign-in page on the way.
    assert [url.split("?")[0] for url in idp_pages] == [f"{live.url}/authorize"], idp_pages
    assert _claim(page, "Идентификатор в ЕЛК (sub)") == sub
    assert _claim(page, "Сеанс ЕЛК (sid)") == shop_sid
    assert _claim(page, "Время входа (auth_time)") == signed_in_at
    expect(page.locator("table.accounts td.number")).to_have_text(DEMO_ACCOUNT)
    _shoot(page, "03-tv-signed-in")

    # «Выйти» on B: RP-initiated logout, back to B's home page, signed out.
    page.get_by_role("button", name="Выйти").click()
    expect(page.get_by_role("status")).to_have_text(
        "Вы вышли. Сеанс ЕЛК завершён на всех порталах."
    )
    expect(page.get_by_role("link", name="Войти через ЕЛК")).to_be_visible()
    assert page.url.startswith(tv.url)
    _shoot(page, "04-tv-signed-out")

    # A learnt it over the back channel: its page shows signed out after a reload.
    _wait_signed_out(page, shop.url + "/")
    expect(page.get_by_role("status")).to_have_text(
        "Вы вышли из ЕЛК на другом портале — здесь сеанс тоже завершён."
    )
    _shoot(page, "05-shop-signed-out-by-backchannel")

    # And the IdP's session is gone: signing in again asks for the password.
    page.get_by_role("link", name="Войти через ЕЛК").click()
    expect(page.get_by_label("Пароль")).to_be_visible()
    context.close()


def test_register_from_a_portal_and_land_back_on_it(live, portals, chromium):
    """«Войти через ЕЛК» → «Регистрация» → the SMS code from /dev/outbox → a password →
    back at the portal, signed in as the new person (the portal's request was carried)."""
    from playwright.sync_api import expect

    from tests.e2e.test_lifecycle_browser import GOOD_PASSWORD, enter_code, fill_step1, last_code

    _, running = portals
    shop = running["shop"]
    phone = "+79995557701"
    context = chromium.new_context(locale="ru-RU", viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(shop.url + "/")
    page.get_by_role("link", name="Войти через ЕЛК").click()
    expect(page.get_by_text("для входа в «Интернет-магазин»")).to_be_visible()
    page.get_by_role("link", name="Регистрация").click()
    expect(page.get_by_text("для входа в «Интернет-магазин»")).to_be_visible()
    fill_step1(page, "8 999 555-77-01")
    _shoot(page, "10-register-from-shop")
    page.get_by_role("button", name="Продолжить").click()
    expect(page.get_by_role("heading", name="Подтвердите операцию")).to_be_visible()
    enter_code(page, last_code(context, live, phone))
    page.get_by_label("Пароль", exact=True).fill(GOOD_PASSWORD)
    page.get_by_role("button", name="Завершить регистрацию").click()
    expect(page.get_by_role("heading", name="Здравствуйте, Анна Игоревна!")).to_be_visible()
    assert page.url.startswith(shop.url)
    assert _claim(page, "Фамилия") == "Соколова"
    _shoot(page, "11-shop-signed-in-after-registration")
    context.close()

"""The cabinet in a real headless Chromium, on the demo billing data: the demo user signs in,
sees no billing accounts, attaches 159000000001 by number with Home Internet credentials
(a wrong password first: the refusal, the login kept), sees it on the main page, then
attaches 159000000002 by service login (step 2 skipped). The IdP serves HTTP and the
linking service gRPC, both on loopback ports. Screenshots of every step at 1280 and 375 px
go to ``test-results/cabinet/`` (looked at by a person, not committed)."""

from __future__ import annotations

import pytest

from idp.adapters.linking_grpc import GrpcLinkingClient
from linking_service.billing_demo import load_demo
from tests.e2e.conftest import RESULTS
from tests.linking_service.conftest import CHEAP, linking_databases, make_linking  # noqa: F401
from tests.support import make_user

pytestmark = pytest.mark.browser

DEMO_LOGIN = "+79990000001"
DEMO_PASSWORD = "Демо-пароль-2026"
SHOTS = RESULTS / "cabinet"


@pytest.fixture
def cabinet_linking(live, make_linking):  # noqa: F811
    """The IdP talking to a real linking service on the demo billing data, with the demo
    user; yields both."""
    linking = make_linking()
    load_demo(linking.sessions, CHEAP)
    client = GrpcLinkingClient(linking.target, lambda: "", timeout=5)
    live.app.extensions["idp.linking"] = client
    make_user(
        live,
        login=DEMO_LOGIN,
        password=DEMO_PASSWORD,
        family_name="Иванова",
        given_name="Мария",
        middle_name="Петровна",
    )
    yield live, linking
    client.close()


@pytest.fixture
def cabinet(cabinet_linking):
    return cabinet_linking[0]


def _shoot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    for width, height in ((1280, 800), (375, 740)):
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(SHOTS / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})


def test_attach_by_number_then_by_service_login(cabinet, chromium, profile):
    from playwright.sync_api import expect

    live = cabinet
    page = chromium.new_context(locale="ru-RU", viewport={"width": 1280, "height": 800}).new_page()
    page.goto(f"{live.url}/login")
    page.get_by_label("Логин").fill(DEMO_LOGIN)
    page.get_by_label("Пароль").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Войти").click()

    # The main page: her name at the top right, no accounts yet.
    page.goto(f"{live.url}/account")
    expect(page.locator("#person-name")).to_have_text("Мария Иванова")
    expect(page.get_by_role("link", name="Персональная информация")).to_be_visible()
    expect(page.locator("#no-accounts")).to_contain_text("Лицевые счета не найдены")
    _shoot(page, f"{profile}-01-main-no-accounts")
    page.get_by_role("link", name="Привязать лицевой счет").click()

    # Step 1 by account number.
    expect(
        page.get_by_role("heading", name="Укажите данные для привязки лицевого счёта")
    ).to_be_visible()
    expect(page.locator(".progress li.current")).to_contain_text("Данные лицевого счёта")
    expect(page.get_by_text("12 цифр из Договора на оказание услуг связи")).to_be_visible()
    expect(page.get_by_text("*Поля, обязательные для заполнения")).to_be_visible()
    page.get_by_label("Регион лицевого счёта").fill("Пермский край")
    page.get_by_label("№ лицевого счёта").fill("159000000001")
    _shoot(page, f"{profile}-02-step1")
    page.get_by_role("button", name="Продолжить").click()

    # Step 2: the service.
    expect(page.get_by_role("heading", name="Выберите услугу")).to_be_visible()
    expect(page.locator(".progress li.done")).to_have_count(1)
    page.get_by_label("Домашний Интернет").check()
    _shoot(page, f"{profile}-03-step2")
    page.get_by_role("button", name="Продолжить").click()

    # Step 3: a wrong password first.
    expect(page.get_by_role("heading", name="Укажите логин и пароль доступа")).to_be_visible()
    expect(page.locator(".progress li.done")).to_have_count(2)
    page.get_by_label("Логин").fill("ivanova.perm")
    page.get_by_label("Пароль").fill("Kv7pT2mX")
    page.get_by_role("button", name="Продолжить").click()
    expect(page.locator("#attach-message")).to_contain_text("не подтверждают право управления")
    expect(page.get_by_label("Логин")).to_have_value("ivanova.perm")
    expect(page.get_by_label("Пароль")).to_have_value("")
    _shoot(page, f"{profile}-04-step3-refused")
    page.get_by_label("Пароль").fill("Kv7pT2mq")
    page.get_by_role("button", name="Продолжить").click()

    # Step 4: attached.
    expect(page.locator("#attach-result")).to_contain_text("159000000001 привязан")
    expect(page.locator(".progress li.done")).to_have_count(3)
    _shoot(page, f"{profile}-05-result")
    page.get_by_role("link", name="Вернуться на главную").click()
    account = page.locator(".accounts li[data-number='159000000001']")
    expect(account).to_contain_text("Пермский край")
    expect(account).to_contain_text("Домашний Интернет, Домашний телефон")
    expect(account).to_contain_text("Привязан с")
    _shoot(page, f"{profile}-06-main-with-account")

    # By service login: step 2 is skipped, the login is carried into step 3.
    page.get_by_role("link", name="Привязать лицевой счет").click()
    page.get_by_label("Регион лицевого счёта").fill("Пермский край")
    page.get_by_label("Логин услуги").fill("ivanov.ps")
    page.get_by_label("Домашний Интернет").check()
    page.get_by_role("button", name="Продолжить").click()
    expect(page.get_by_role("heading", name="Укажите логин и пароль доступа")).to_be_visible()
    expect(page.get_by_role("textbox", name="Логин", exact=True)).to_have_value("ivanov.ps")
    page.get_by_label("Пароль").fill("Rb4xN8wd")
    page.get_by_role("button", name="Продолжить").click()
    expect(page.locator("#attach-result")).to_contain_text("159000000002 привязан")
    page.get_by_role("link", name="Вернуться на главную").click()
    expect(page.locator(".accounts li")).to_have_count(2)

    # Detach, after a confirmation step.
    page.get_by_role("link", name="Отвязать лицевой счёт № 159000000002").click()
    expect(
        page.get_by_role("heading", name="Отвязать лицевой счёт № 159000000002?")
    ).to_be_visible()
    _shoot(page, f"{profile}-07-detach-confirm")
    page.get_by_role("button", name="Отвязать").click()
    expect(page.locator("#detached")).to_have_text("Лицевой счёт № 159000000002 отвязан.")
    expect(page.locator(".accounts li")).to_have_count(1)


def test_finish_registration_without_attaching(cabinet, chromium, profile):
    from playwright.sync_api import expect

    live = cabinet
    _, login = make_user(
        live, "+79995550801", DEMO_PASSWORD, family_name="Орлова", given_name="Вера"
    )
    page = chromium.new_context(locale="ru-RU", viewport={"width": 1280, "height": 800}).new_page()
    page.goto(f"{live.url}/login")
    page.get_by_label("Логин").fill(login)
    page.get_by_label("Пароль").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Войти").click()
    page.goto(f"{live.url}/account")
    page.get_by_role("button", name="Завершить регистрацию без привязки лицевого счета").click()
    expect(page.locator("#no-accounts")).to_contain_text("ограниченный перечень сервисов ЕЛК")
    expect(page.get_by_role("link", name="Привязать лицевой счет")).to_be_visible()
    expect(page.get_by_role("button", name="Завершить регистрацию без привязки")).to_have_count(0)
    _shoot(page, f"{profile}-08-finished-without-attaching")


def _sign_in(chromium, live, login=DEMO_LOGIN, password=DEMO_PASSWORD):
    context = chromium.new_context(locale="ru-RU", viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.goto(f"{live.url}/login")
    page.get_by_label("Логин").fill(login)
    page.get_by_label("Пароль").fill(password)
    page.get_by_role("button", name="Войти").click()
    return context, page


def _to_step3(page, live, number="159000000001"):
    from playwright.sync_api import expect

    page.goto(f"{live.url}/account/attach?new=1")
    page.get_by_label("Регион лицевого счёта").fill("Пермский край")
    page.get_by_label("№ лицевого счёта").fill(number)
    page.get_by_role("button", name="Продолжить").click()
    page.get_by_label("Домашний Интернет").check()
    page.get_by_role("button", name="Продолжить").click()
    expect(page.get_by_role("heading", name="Укажите логин и пароль доступа")).to_be_visible()


def test_reattach_from_another_person_who_is_told(cabinet_linking, chromium, profile):
    """159000000001 is held by another cabinet account; the demo user proves it: re-attached,
    and the previous holder's notice is in the outbox (through the link-event consumer)."""
    from playwright.sync_api import expect

    from idp.extensions import db
    from idp.services.link_events import LinkEventNotifier
    from tests.e2e.test_lifecycle_browser import outbox
    from tests.linking_service.test_attachment import attach_by_number
    from tests.linking_service.test_idp_auto_attach import mint

    live, linking = cabinet_linking
    _, other_login = make_user(live, "+79995550901", family_name="Орлова", given_name="Вера")
    _, other_token = linking.user_token(other_login)
    attach_by_number(
        linking, other_token, number="159000000001", login="ivanova.perm", password="Kv7pT2mq"
    )
    context, page = _sign_in(chromium, live)
    _to_step3(page, live)
    page.get_by_label("Логин").fill("ivanova.perm")
    page.get_by_label("Пароль").fill("Kv7pT2mq")
    page.get_by_role("button", name="Продолжить").click()
    expect(page.locator("#attach-result")).to_contain_text(
        "был привязан к другой учётной записи ЕЛК"
    )
    _shoot(page, f"{profile}-10-reattached")
    page.get_by_role("link", name="Вернуться на главную").click()
    expect(page.locator(".accounts li[data-number='159000000001']")).to_have_count(1)

    # `idp linking-events`, once: the re-attachment event becomes the previous holder's notice.
    events = GrpcLinkingClient(linking.target, mint(live))
    try:
        with live.ctx():
            services = live.services
            notifier = LinkEventNotifier(db.session, services.store, services.delivery)
            found = events.events(notifier.cursor(), wait=0.8)
            assert [e.type for e in found] == ["attached", "reattached"]
            assert notifier.handle(found) == 1
    finally:
        events.close()
    [notice] = outbox(context, live, other_login)
    assert "159000000001" in notice and "другой учётной записи" in notice
    assert outbox(context, live, DEMO_LOGIN) == []  # the new holder is not told
    context.close()


def test_the_linking_service_stopped_mid_wizard_loses_nothing(
    cabinet_linking,
    make_linking,  # noqa: F811
    chromium,
    profile,
):
    """At step 3 the real linking service stops: a clear page, nothing typed is lost (but
    the password); started again on the same port, the same flow continues and the account
    is attached once."""
    from playwright.sync_api import expect
    from sqlalchemy import select

    from linking_service.adapters.sql.models import LinkEventRow, LinkRow

    live, linking = cabinet_linking
    context, page = _sign_in(chromium, live)
    _to_step3(page, live)
    linking.server.stop(0)
    page.get_by_label("Логин").fill("ivanova.perm")
    page.get_by_label("Пароль").fill("Kv7pT2mq")
    page.get_by_role("button", name="Продолжить").click()
    expect(page.get_by_text("сейчас недоступен")).to_be_visible()
    expect(page.get_by_role("link", name="Попробовать ещё раз")).to_be_visible()
    expect(page.get_by_role("link", name="Вернуться на главную")).to_be_visible()
    assert "Kv7pT2mq" not in page.content() and "UNAVAILABLE" not in page.content()
    _shoot(page, f"{profile}-11-linking-away")

    again = make_linking(LINKING_LISTEN=linking.target)  # same port, same database
    assert again.target == linking.target
    step3 = page.get_by_role("heading", name="Укажите логин и пароль доступа")
    # The IdP's channel finds the service again after its reconnect backoff (≤ 2 s): until
    # then «Попробовать ещё раз» shows the same clear page.
    for _ in range(20):
        page.get_by_role("link", name="Попробовать ещё раз").click()
        page.wait_for_load_state()
        if step3.is_visible():
            break
        expect(page.get_by_text("сейчас недоступен")).to_be_visible()
        page.wait_for_timeout(250)
    expect(step3).to_be_visible()
    expect(page.get_by_role("textbox", name="Логин", exact=True)).to_have_value("ivanova.perm")
    expect(page.locator(".progress li.done")).to_have_count(2)
    page.get_by_label("Пароль").fill("Kv7pT2mq")
    page.get_by_role("button", name="Продолжить").click()
    expect(page.locator("#attach-result")).to_contain_text("159000000001 привязан")
    _shoot(page, f"{profile}-12-attached-after-the-service-returned")
    page.goto(f"{live.url}/account")
    expect(page.locator(".accounts li[data-number='159000000001']")).to_have_count(1)
    context.close()
    with again.sessions() as db:
        [link] = db.scalars(select(LinkRow).where(LinkRow.account_number == "159000000001"))
        events = db.scalars(
            select(LinkEventRow).where(LinkEventRow.account_number == "159000000001")
        ).all()
    assert link.subject and [e.type for e in events] == ["attached"]

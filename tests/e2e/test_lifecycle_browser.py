"""The account lifecycle in a real headless Chromium, as a customer and a developer see it:
registration by phone and by e-mail, the legacy-cabinet upgrade, the SMS resend cooldown and
code expiry, password recovery, and «Персональная информация» (contact and password changes).

Codes and links are read from the development outbox page (``/dev/outbox``) in the browser,
the way a developer without an SMS gateway reads them; never from the database. Pages are
driven by their Russian labels and roles (see /work/shared/seed/README.md).

The IdP is built here rather than by ``tests.conftest.make_live`` because the captcha steps
need a :class:`~idp.adapters.captcha_image.FixedCaptchaRenderer`: only a hash of the answer is
stored, so the test reads the text the renderer was last asked to draw.
"""

from __future__ import annotations

import re
import secrets

import pytest

from idp import create_app
from idp.adapters.captcha_image import FixedCaptchaRenderer
from idp.adapters.logout_http import RecordingLogoutNotifier
from idp.adapters.store_memory import MemoryStore
from idp.adapters.store_redis import RedisStore
from idp.config import load_settings
from tests.conftest import REDIS_URL, TEST_RETRY, _reset, base_env
from tests.e2e.conftest import RESULTS, launch_chromium
from tests.support import Clock, Live, make_user, start_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.parametrize("profile", ["embedded"], indirect=True),
]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 812}

GOOD_PASSWORD = "Зимний-вечер-у-камина"
OLD_PASSWORD = "Старый-пароль-2019"


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    with launch_chromium() as chromium:
        yield chromium


@pytest.fixture
def live(profile, databases, worker, tmp_path):
    """Like tests.conftest's ``live``, but the captcha renderer records its texts:
    ``live.captcha.last`` is the answer to the captcha the last page showed."""
    url = databases[profile]
    _reset(url)
    clock = Clock()
    if profile == "pg-redis":
        store = RedisStore(REDIS_URL, prefix=f"idp-test:{worker}:")
    else:
        store = MemoryStore(clock=clock)
    store.clear()
    renderer = FixedCaptchaRenderer()
    notifier = RecordingLogoutNotifier()

    def build(issuer: str) -> Live:
        env = base_env(url, tmp_path)
        env["IDP_ISSUER"] = issuer
        app = create_app(
            load_settings(env),
            notifier=notifier,
            store=store,
            clock=clock,
            captcha_renderer=renderer,
        )
        return Live(issuer, app, clock, notifier=notifier, store=store, profile=profile)

    started = start_server(build)
    started.captcha = renderer
    started.start_worker(TEST_RETRY)  # the outbox worker beside the server, as in make_live
    yield started
    started.stop()
    with started.app.app_context():
        from idp.extensions import db

        db.session.remove()
        db.engine.dispose()
    store.clear()


def _new_context(browser):
    context = browser.new_context(locale="ru-RU", viewport=DESKTOP)
    context.set_default_timeout(10_000)
    return context


@pytest.fixture
def context(browser):
    context = _new_context(browser)
    yield context
    context.close()


@pytest.fixture
def page(context):
    return context.new_page()


# --- helpers ----------------------------------------------------------------------------------


def expect(target):
    from playwright.sync_api import expect as pw_expect

    return pw_expect(target)


_numbers = iter(range(1_000_000))


def new_phone() -> tuple[str, str, str]:
    """A fresh mobile number: (E.164, «+7 999 …» notation, «8 999 …» notation)."""
    n = f"{secrets.randbelow(90) + 10:02d}{next(_numbers) % 100:02d}"
    return f"+7999555{n}", f"+7 999 555-{n[:2]}-{n[2:]}", f"8 (999) 555 {n[:2]} {n[2:]}"


def shoot(page, name: str) -> None:
    """Full-page screenshots on a desktop and a phone (375x812) viewport."""
    RESULTS.mkdir(exist_ok=True)
    size = page.viewport_size or DESKTOP
    page.screenshot(path=str(RESULTS / f"lifecycle-{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(RESULTS / f"lifecycle-{name}-phone.png"), full_page=True)
    page.set_viewport_size(size)


def outbox(context, live, recipient: str) -> list[str]:
    """Texts of the messages the development outbox page lists for ``recipient``, newest
    first (opened in a new tab of the same browser, as a developer would), once the outbox
    worker beside the server has delivered everything queued."""
    live.drain()
    tab = context.new_page()
    try:
        tab.goto(f"{live.url}/dev/outbox")
        expect(tab.get_by_role("heading", name="Исходящие (режим разработки)")).to_be_visible()
        rows = tab.locator(f'tr.message[data-recipient="{recipient}"]')
        return [rows.nth(i).inner_text() for i in range(rows.count())]
    finally:
        tab.close()


def last_code(context, live, phone: str) -> str:
    messages = outbox(context, live, phone)
    assert messages, f"no SMS for {phone} in /dev/outbox"
    match = re.search(r"\b(\d{6})\b", messages[0])
    assert match, f"no 6-digit code in the SMS: {messages[0]!r}"
    return match.group(1)


def last_link(context, live, email: str) -> str:
    messages = outbox(context, live, email)
    assert messages, f"no letter for {email} in /dev/outbox"
    match = re.search(re.escape(live.url) + r"/(?:confirm|recover)/[\w\-]+", messages[0])
    assert match, f"no link in the letter: {messages[0]!r}"
    return match.group(0)


def wrong_code(right: str) -> str:
    return f"{(int(right) + 1) % 1_000_000:06d}"


def fill_step1(page, contact: str, family="Соколова", given="Анна", middle="Игоревна") -> None:
    expect(page.get_by_role("heading", name="Регистрация")).to_be_visible()
    # Required fields' labels end with an aria-hidden «*»: Playwright's get_by_label matches the
    # label's text content, star included, so these match by substring.
    page.get_by_label("Фамилия").fill(family)
    page.get_by_label("Имя").fill(given)
    page.get_by_label("Отчество").fill(middle)
    page.get_by_label("Контактные данные").fill(contact)
    page.get_by_label("Регион").press_sequentially("Пермский край")


def register_phone(page, live, display: str) -> None:
    page.goto(f"{live.url}/register")
    fill_step1(page, display)
    page.get_by_role("button", name="Продолжить").click()
    expect(page.get_by_role("heading", name="Подтвердите операцию")).to_be_visible()


def enter_code(page, code: str) -> None:
    page.get_by_label("Код из SMS").fill(code)
    page.get_by_role("button", name="Подтвердить", exact=True).click()


def countdown_seconds(page) -> int:
    text = page.get_by_text(re.compile(r"Повторная отправка через \d+ с")).inner_text()
    return int(re.search(r"(\d+)", text).group(1))


def sign_in(page, live, login: str, password: str) -> None:
    page.goto(f"{live.url}/login")
    expect(page.get_by_role("heading", name="Авторизация")).to_be_visible()
    page.get_by_label("Логин", exact=True).fill(login)
    page.get_by_label("Пароль", exact=True).fill(password)
    page.get_by_role("button", name="Войти").click()


def top_right_link(page, text: str):
    return page.locator("header").get_by_role("link", name=text)


def assert_top_right(page, text: str) -> None:
    link = top_right_link(page, text)
    expect(link).to_be_visible()
    box = link.bounding_box()
    width = page.viewport_size["width"]
    assert box["x"] > width / 2 and box["y"] < 80, f"{text!r} is not at the top right: {box}"


def form_with(page, button: str):
    """The form holding the button ``button`` (the profile page has several forms)."""
    return page.locator("form").filter(has=page.get_by_role("button", name=button, exact=True))


# --- 1. registration by phone -----------------------------------------------------------------


def test_register_by_phone_then_sign_in_with_another_notation(live, page):
    e164, plus7, eight = new_phone()
    page.goto(f"{live.url}/login")
    page.get_by_role("link", name="Регистрация").click()
    expect(page).to_have_title("Регистрация — Ростелеком")
    fill_step1(page, plus7)
    shoot(page, "register-step1")
    page.get_by_role("button", name="Продолжить").click()

    # «Подтвердите операцию»: the masked number and a live countdown.
    expect(page.get_by_role("heading", name="Подтвердите операцию")).to_be_visible()
    masked = e164[:5] + "***" + e164[-4:]
    expect(page.get_by_text(masked)).to_be_visible()
    assert e164 not in page.content()
    resend = page.get_by_role("button", name="Отправить SMS-код повторно")
    expect(resend).to_be_disabled()
    first = countdown_seconds(page)
    # waits (up to expect's timeout) for the countdown to tick, not a guessed time
    expect(page.locator("#countdown [data-seconds]")).not_to_have_text(str(first))
    second = countdown_seconds(page)
    assert 0 < second < first <= 300, (first, second)
    shoot(page, "confirm-countdown")

    # A wrong code: an error with the tries left; then the right one from /dev/outbox.
    code = last_code(page.context, live, e164)
    enter_code(page, wrong_code(code))
    expect(page.get_by_role("alert")).to_have_text("Неверный код. Осталось попыток: 4.")
    expect(page.get_by_label("Код из SMS")).to_have_attribute("aria-invalid", "true")
    enter_code(page, code)

    # The password: a common one is refused with the reason, a good one opens the cabinet.
    expect(page.get_by_role("heading", name="Придумайте пароль")).to_be_visible()
    page.get_by_label("Пароль", exact=True).fill("qwerty123")
    page.get_by_role("button", name="Завершить регистрацию").click()
    expect(page.get_by_role("alert")).to_have_text("Пароль слишком распространён")
    shoot(page, "password")
    page.get_by_label("Пароль", exact=True).fill(GOOD_PASSWORD)
    page.get_by_role("button", name="Завершить регистрацию").click()

    expect(page.get_by_role("heading", name="Личный кабинет")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("Регистрация завершена. Добро пожаловать!")
    expect(page.get_by_text("Соколова Анна Игоревна")).to_be_visible()
    assert_top_right(page, plus7)
    shoot(page, "home")

    # Sign out, then sign in with the number in the «8 …» notation.
    page.get_by_role("button", name="Выйти").click()
    expect(page.get_by_role("heading", name="Вы вышли из кабинета")).to_be_visible()
    page.goto(f"{live.url}/account")
    expect(page.get_by_role("heading", name="Авторизация")).to_be_visible()
    sign_in(page, live, eight, GOOD_PASSWORD)
    expect(page.get_by_role("heading", name="Личный кабинет")).to_be_visible()
    assert_top_right(page, plus7)


# --- 2. registration by e-mail ----------------------------------------------------------------


def test_register_by_email_link_needs_a_click(live, page, browser):
    email = "anna.sokolova@example.ru"
    page.goto(f"{live.url}/register")
    fill_step1(page, "Anna.Sokolova@Example.ru")
    page.get_by_role("button", name="Продолжить").click()
    expect(page.get_by_role("heading", name="Подтвердите e-mail")).to_be_visible()
    expect(page.get_by_text("a***@example.ru")).to_be_visible()

    link = last_link(page.context, live, email)
    # A mail scanner (another browser, no cookies) opens the link: a button, nothing else.
    scanner = _new_context(browser)
    try:
        for _ in range(2):
            peek = scanner.new_page()
            peek.goto(link)
            expect(
                peek.get_by_role("heading", name="Подтверждение контактных данных")
            ).to_be_visible()
            expect(peek.get_by_role("button", name="Подтвердить")).to_be_visible()
            peek.close()
    finally:
        scanner.close()
    # …and the registration is still waiting for the confirmation.
    page.goto(f"{live.url}/register/password")
    expect(page.get_by_role("heading", name="Подтвердите e-mail")).to_be_visible()

    page.goto(link)
    page.get_by_role("button", name="Подтвердить").click()
    expect(page.get_by_role("heading", name="Придумайте пароль")).to_be_visible()
    page.get_by_label("Пароль", exact=True).fill(GOOD_PASSWORD)
    page.get_by_role("button", name="Завершить регистрацию").click()
    expect(page.get_by_role("heading", name="Личный кабинет")).to_be_visible()
    assert_top_right(page, email)

    # Single use: the link is dead now.
    page.goto(link)
    expect(page.get_by_role("alert")).to_have_text("Ссылка недействительна или устарела.")
    expect(page.get_by_role("button", name="Подтвердить")).to_have_count(0)


# --- 3. legacy cabinet upgrade ----------------------------------------------------------------


def test_legacy_account_upgrade_wrong_then_right_password(live, page):
    import bcrypt

    from idp.extensions import db
    from idp.services.legacy import LegacyImporter

    email = "p.kuznetsov@example.ru"
    stored = bcrypt.hashpw(OLD_PASSWORD.encode(), bcrypt.gensalt(6)).decode()
    with live.ctx():
        report = LegacyImporter(db.session, live.clock).import_records(
            [
                (
                    1,
                    {
                        "email": email,
                        "family_name": "Кузнецов",
                        "given_name": "Пётр",
                        "password_hash": stored,
                        "source": "lk-perm",
                    },
                )
            ]
        )
        assert report.imported == 1

    page.goto(f"{live.url}/register")
    fill_step1(page, email, family="Кузнецов", given="Пётр", middle="Сергеевич")
    page.get_by_role("button", name="Продолжить").click()
    expect(
        page.get_by_text(
            "Учетная запись с указанными данными уже используется в других личных кабинетах "
            "«Ростелеком»"
        )
    ).to_be_visible()
    expect(page.get_by_text("p***@example.ru")).to_be_visible()
    expect(page.get_by_role("img", name="Код с картинки")).to_be_visible()
    shoot(page, "legacy")

    # «Пароль» is required here, so its label ends with the star: matched by substring.
    # A wrong password (with the right captcha): an error that offers recovery.
    page.get_by_label("Пароль").fill("не-тот-пароль-2019")
    page.get_by_label("Введите код с картинки").fill(live.captcha.last)
    page.get_by_role("button", name="Продолжить").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Неверный пароль.")
    expect(alert.get_by_role("link", name="Восстановить пароль")).to_have_attribute(
        "href", re.compile(r"/recover$")
    )
    shoot(page, "legacy-wrong")

    # The right password with a wrong captcha is refused too.
    page.get_by_label("Пароль").fill(OLD_PASSWORD)
    page.get_by_label("Введите код с картинки").fill("00000")
    page.get_by_role("button", name="Продолжить").click()
    expect(page.get_by_role("alert")).to_have_text("Неверный код с картинки. Попробуйте ещё раз.")

    # The right password and the captcha: the login page, then sign in with them.
    page.get_by_label("Пароль").fill(OLD_PASSWORD)
    page.get_by_label("Введите код с картинки").fill(live.captcha.last)
    page.get_by_role("button", name="Продолжить").click()
    expect(page.get_by_role("heading", name="Авторизация")).to_be_visible()
    sign_in(page, live, email, OLD_PASSWORD)
    expect(page.get_by_role("heading", name="Личный кабинет")).to_be_visible()
    assert_top_right(page, email)


# --- 4. resend cooldown -----------------------------------------------------------------------


def test_resend_waits_for_the_cooldown_and_replaces_the_code(live, page):
    e164, plus7, _ = new_phone()
    register_phone(page, live, plus7)
    old = last_code(page.context, live, e164)
    resend = page.get_by_role("button", name="Отправить SMS-код повторно")
    expect(resend).to_be_disabled()
    # A disabled button submits nothing: no submit event fires at all (the click's events
    # are handled before click() returns), so nothing can be in flight when we look.
    page.evaluate(
        "window.submits = 0;"
        " document.addEventListener('submit', () => { window.submits += 1; }, true)"
    )
    resend.click(force=True)
    assert page.evaluate("window.submits") == 0
    assert page.url.endswith("/register/confirm")
    assert len(outbox(page.context, live, e164)) == 1

    # Even with the button re-enabled by hand, the server refuses and says how long to wait.
    page.evaluate("document.getElementById('resend').disabled = false")
    resend.click()
    expect(page.get_by_role("alert")).to_contain_text("Повторная отправка будет доступна через")
    assert len(outbox(page.context, live, e164)) == 1

    live.clock.advance(301)
    page.goto(f"{live.url}/register/confirm")
    expect(resend).to_be_enabled()
    expect(page.get_by_text(re.compile(r"Повторная отправка через"))).to_have_count(0)
    resend.click()
    expect(page.get_by_role("heading", name="Подтвердите операцию")).to_be_visible()
    expect(resend).to_be_disabled()
    assert 300 < countdown_seconds(page) <= 600  # the cooldown doubles
    messages = outbox(page.context, live, e164)
    assert len(messages) == 2
    new = last_code(page.context, live, e164)

    if new != old:  # one chance in a million that the new code repeats the old one
        enter_code(page, old)
        expect(page.get_by_role("alert")).to_have_text("Неверный код. Осталось попыток: 4.")
    enter_code(page, new)
    expect(page.get_by_role("heading", name="Придумайте пароль")).to_be_visible()


# --- 5. expired code --------------------------------------------------------------------------


def test_expired_code_is_refused(live, page):
    e164, plus7, _ = new_phone()
    register_phone(page, live, plus7)
    code = last_code(page.context, live, e164)
    live.clock.advance(601)
    enter_code(page, code)
    expect(page.get_by_role("alert")).to_have_text("Срок действия кода истёк. Запросите новый код.")
    # …and a new one can be requested right away.
    expect(page.get_by_role("button", name="Отправить SMS-код повторно")).to_be_enabled()


# --- 6. recovery by phone ---------------------------------------------------------------------


def test_recovery_by_phone_resets_password_and_ends_sessions(live, page, browser):
    e164, _, eight = new_phone()
    make_user(live, login=e164, password=OLD_PASSWORD)

    # Another device was signed in before the reset.
    other = _new_context(browser)
    try:
        before = other.new_page()
        sign_in(before, live, e164, OLD_PASSWORD)
        expect(before.get_by_role("heading", name="Личный кабинет")).to_be_visible()

        page.goto(f"{live.url}/login")
        page.get_by_role("link", name="Восстановить пароль").click()
        expect(page.get_by_role("heading", name="Восстановить пароль")).to_be_visible()
        page.get_by_label("Логин").fill(eight)
        page.get_by_role("button", name="Продолжить").click()
        expect(page.get_by_role("heading", name="Подтвердите операцию")).to_be_visible()
        enter_code(page, last_code(page.context, live, e164))
        expect(page.get_by_role("heading", name="Новый пароль")).to_be_visible()
        page.get_by_label("Новый пароль").fill(GOOD_PASSWORD)
        page.get_by_role("button", name="Готово").click()

        expect(page.get_by_role("heading", name="Авторизация")).to_be_visible()
        assert "reset=1" in page.url
        # The seed's login page must tell the user what happened (checked last, softly, so
        # the rest of the lifecycle is verified either way).
        notice = page.get_by_role("status")
        notice_text = notice.inner_text() if notice.count() else ""

        sign_in(page, live, e164, OLD_PASSWORD)
        expect(page.get_by_role("alert")).to_have_text("Неверный логин или пароль.")
        sign_in(page, live, e164, GOOD_PASSWORD)
        expect(page.get_by_role("heading", name="Личный кабинет")).to_be_visible()

        before.reload()
        expect(before.get_by_role("heading", name="Авторизация")).to_be_visible()
    finally:
        other.close()
    assert re.search(r"[Пп]ароль.*измен", notice_text), (
        f"after a reset the login page shows no notice that the password changed "
        f"(role=status text: {notice_text!r})"
    )


# --- 7. change of contact ---------------------------------------------------------------------


def test_change_contact_to_a_new_email(live, page):
    e164, plus7, _ = new_phone()
    make_user(live, login=e164, password=OLD_PASSWORD)
    sign_in(page, live, e164, OLD_PASSWORD)
    expect(page.get_by_role("heading", name="Личный кабинет")).to_be_visible()
    top_right_link(page, plus7).click()
    expect(page.get_by_role("heading", name="Персональная информация")).to_be_visible()
    shoot(page, "profile")

    new_email = "ivan.petrov@example.ru"
    contact_form = form_with(page, "Сохранить изменения")
    contact_form.get_by_label("Новый телефон или e-mail").fill(new_email)
    contact_form.get_by_label("Текущий пароль").fill(OLD_PASSWORD)
    contact_form.get_by_role("button", name="Сохранить изменения").click()
    expect(page.get_by_role("status")).to_have_text(
        "Мы отправили ссылку для подтверждения на i***@example.ru."
    )
    expect(page.locator("#email")).to_have_text("—")  # not replaced before confirmation

    page.goto(last_link(page.context, live, new_email))
    page.get_by_role("button", name="Подтвердить").click()
    expect(page.get_by_role("heading", name="Персональная информация")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("Контактные данные изменены.")
    expect(page.locator("#email")).to_have_text(new_email)
    expect(page.locator("#phone")).to_have_text(plus7)

    # The old contact (the phone) is told through its own channel.
    notices = outbox(page.context, live, e164)
    assert notices, (
        "no notice to the account's phone in /dev/outbox after an e-mail was added to the account"
    )


# --- 8. change of password --------------------------------------------------------------------


def test_change_password_wrong_then_right(live, page, browser):
    e164, plus7, _ = new_phone()
    make_user(live, login=e164, password=OLD_PASSWORD)
    sign_in(page, live, e164, OLD_PASSWORD)
    top_right_link(page, plus7).click()
    expect(page.get_by_role("heading", name="Персональная информация")).to_be_visible()

    def change(current: str, new: str) -> None:
        form = form_with(page, "Готово")
        form.get_by_label("Текущий пароль").fill(current)
        form.get_by_label("Новый пароль").fill(new)
        form.get_by_role("button", name="Готово").click()

    change("совсем-не-тот-пароль", GOOD_PASSWORD)
    expect(page.get_by_role("alert")).to_have_text("Неверный текущий пароль.")
    change(OLD_PASSWORD, GOOD_PASSWORD)
    expect(page.get_by_role("status")).to_have_text("Пароль изменён. Другие сеансы завершены.")
    assert any("Пароль от ЕЛК изменён" in m for m in outbox(page.context, live, e164))

    fresh = _new_context(browser)
    try:
        check = fresh.new_page()
        sign_in(check, live, e164, OLD_PASSWORD)
        expect(check.get_by_role("alert")).to_have_text("Неверный логин или пароль.")
        sign_in(check, live, e164, GOOD_PASSWORD)
        expect(check.get_by_role("heading", name="Личный кабинет")).to_be_visible()
    finally:
        fresh.close()


# --- the look: every text field is drawn like the others ---------------------------------------


def test_code_and_contact_fields_are_styled_like_the_other_fields(live, page):
    """The «Код из SMS» and «Новый телефон или e-mail» fields must span the form like every
    other field (they are the main control of their form), on a desktop and on a phone."""
    e164, plus7, _ = new_phone()
    register_phone(page, live, plus7)
    narrow = []
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        field = page.get_by_label("Код из SMS").bounding_box()
        button = page.get_by_role("button", name="Подтвердить", exact=True).bounding_box()
        if field["width"] < 0.9 * button["width"] or field["height"] < 40:
            narrow.append(f"«Код из SMS» at {viewport['width']}px: {field} vs button {button}")

    other, other_display, _ = new_phone()
    make_user(live, login=other, password=OLD_PASSWORD)
    page.set_viewport_size(DESKTOP)
    sign_in(page, live, other, OLD_PASSWORD)
    top_right_link(page, other_display).click()
    form = form_with(page, "Сохранить изменения")
    for viewport in (DESKTOP, PHONE):
        page.set_viewport_size(viewport)
        field = form.get_by_label("Новый телефон или e-mail").bounding_box()
        password = form.get_by_label("Текущий пароль").bounding_box()
        if field["width"] < 0.9 * password["width"] or field["height"] < 0.8 * password["height"]:
            narrow.append(
                f"«Новый телефон или e-mail» at {viewport['width']}px: {field} vs {password}"
            )
    assert not narrow, "unstyled fields:\n" + "\n".join(narrow)

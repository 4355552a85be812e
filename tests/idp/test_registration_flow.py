"""Registration, recovery and personal information over real HTTP, codes read from the
development outbox (the database rows the dev senders write)."""

from __future__ import annotations

import re

import requests
from sqlalchemy import select

from idp.adapters.sql.models import OutboxMessage, User
from tests.support import PASSWORD, csrf_of, make_user

NEW_PASSWORD = "Зимний-вечер-у-камина"


def outbox(live, recipient):
    from idp.extensions import db

    live.drain()  # delivered by the outbox worker beside the server
    with live.ctx():
        rows = db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.recipient == recipient)
            .order_by(OutboxMessage.id)
        ).all()
        db.session.expunge_all()
        return rows


def last_code(live, phone) -> str:
    return re.search(r"\b(\d{6})\b", outbox(live, phone)[-1].body).group(1)


def last_link(live, email) -> str:
    return re.search(
        r"https?://\S+/(?:confirm|recover)/[\w\-]+", outbox(live, email)[-1].body
    ).group(0)


def step1(http, live, contact, **extra):
    page = http.get(f"{live.url}/register")
    data = {
        "csrf_token": csrf_of(page.text),
        "family_name": "Соколова",
        "given_name": "Анна",
        "middle_name": "Игоревна",
        "contact": contact,
        "region": "Пермский край",
        "accept": "1",
        **extra,
    }
    return http.post(f"{live.url}/register", data=data, allow_redirects=False)


def post_form(http, live, path, **data):
    page = http.get(f"{live.url}{path}")
    return http.post(
        f"{live.url}{path}", data={"csrf_token": csrf_of(page.text), **data}, allow_redirects=False
    )


def test_register_by_phone_then_sign_in(live):
    http = requests.Session()
    response = step1(http, live, "8 (999) 555-12-34")
    assert response.status_code == 303 and response.headers["Location"].endswith(
        "/register/confirm"
    )
    page = http.get(f"{live.url}/register/confirm")
    assert "Подтвердите операцию" in page.text and "***" in page.text
    assert post_form(http, live, "/register/confirm", code="000000").status_code == 400
    code = last_code(live, "+79995551234")
    assert (
        post_form(http, live, "/register/confirm", code=code)
        .headers["Location"]
        .endswith("/register/password")
    )
    weak = post_form(http, live, "/register/password", password="12345678")
    assert weak.status_code == 400
    done = post_form(http, live, "/register/password", password=NEW_PASSWORD)
    assert done.status_code == 303 and "/account" in done.headers["Location"]
    home = http.get(f"{live.url}/account")
    assert "Соколова" in home.text
    with live.ctx():
        from idp.extensions import db

        user = db.session.scalar(select(User).where(User.phone == "+79995551234"))
        assert user.phone_verified and user.region == "Пермский край" and user.terms_version


def test_register_by_email_link_confirmed_by_post_only(live):
    http = requests.Session()
    response = step1(http, live, "anna@example.ru")
    assert response.headers["Location"].endswith("/register/sent")
    link = last_link(live, "anna@example.ru")
    assert link.startswith(live.url)
    scanner = requests.get(link)  # a mail scanner's GET changes nothing
    assert scanner.status_code == 200 and "Подтвердить" in scanner.text
    confirmed = post_form(http, live, link[len(live.url) :])
    assert confirmed.headers["Location"].endswith("/register/password")
    assert post_form(http, live, "/register/password", password=NEW_PASSWORD).status_code == 303
    again = requests.get(link)  # single use: the link is dead now
    assert "недействительна" in again.text and 'name="csrf_token"' not in again.text


def test_taken_contact_gets_the_same_answer_and_the_owner_is_told(live):
    _, phone = make_user(live)
    http = requests.Session()
    response = step1(http, live, phone)
    assert response.status_code == 303 and response.headers["Location"].endswith(
        "/register/confirm"
    )
    messages = outbox(live, phone)
    assert len(messages) == 1 and not re.search(r"\b\d{6}\b", messages[0].body)


def test_recovery_by_phone_revokes_sessions(live):
    sub, phone = make_user(live)
    http = requests.Session()
    response = post_form(http, live, "/recover", login=phone)
    assert response.headers["Location"].endswith("/recover/confirm")
    code = last_code(live, phone)
    assert post_form(http, live, "/recover/confirm", code=code).status_code == 303
    done = post_form(http, live, "/recover/password", password=NEW_PASSWORD)
    assert "reset=1" in done.headers["Location"]
    unknown = post_form(requests.Session(), live, "/recover", login="+79990009988")
    assert unknown.status_code == 303  # the same answer for a number nobody has


def test_profile_change_password(live):
    _, phone = make_user(live)
    http = requests.Session()
    from tests.support import submit_login

    page = http.get(f"{live.url}/login")
    assert submit_login(http, live, page, phone, PASSWORD).status_code == 303
    page = http.get(f"{live.url}/account/profile")
    assert "Персональная информация" in page.text
    wrong = http.post(
        f"{live.url}/account/profile/password",
        data={
            "csrf_token": csrf_of(page.text),
            "current_password": "nope",
            "new_password": NEW_PASSWORD,
        },
        allow_redirects=False,
    )
    assert wrong.status_code == 400
    ok = http.post(
        f"{live.url}/account/profile/password",
        data={
            "csrf_token": csrf_of(page.text),
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
        },
        allow_redirects=False,
    )
    assert ok.status_code == 303


def test_links_use_the_configured_issuer_never_the_host_header(live):
    """Checklist 38: a forged Host cannot redirect the recovery link."""
    sub, _ = make_user(live, login="host@example.ru")
    http = requests.Session()
    page = http.get(f"{live.url}/recover")
    http.post(
        f"{live.url}/recover",
        headers={"Host": "evil.example"},
        allow_redirects=False,
        data={"csrf_token": csrf_of(page.text), "login": "host@example.ru"},
    )
    for message in outbox(live, "host@example.ru"):
        assert "evil.example" not in message.body
        assert f"{live.url}/recover/" in message.body


def test_contact_change_needs_the_current_password_and_counts_failures(live):
    """Checklist 37."""
    from tests.support import submit_login

    sub, phone = make_user(live)
    http = requests.Session()
    submit_login(http, live, http.get(f"{live.url}/login"), phone, PASSWORD)
    page = http.get(f"{live.url}/account/profile")
    wrong = http.post(
        f"{live.url}/account/profile/contact",
        allow_redirects=False,
        data={
            "csrf_token": csrf_of(page.text),
            "contact": "new@example.ru",
            "current_password": "not-my-password",
        },
    )
    assert wrong.status_code == 400 and "Неверный текущий пароль" in wrong.text
    with live.ctx():
        assert live.services.throttle.failures(f"user:{sub}") == 1
    assert outbox(live, "new@example.ru") == []
    ok = http.post(
        f"{live.url}/account/profile/contact",
        allow_redirects=False,
        data={
            "csrf_token": csrf_of(page.text),
            "contact": "new@example.ru",
            "current_password": PASSWORD,
        },
    )
    assert ok.status_code == 200 and len(outbox(live, "new@example.ru")) == 1
    link = last_link(live, "new@example.ru")
    assert post_form(http, live, link[len(live.url) :]).status_code == 303
    with live.ctx():
        assert live.services.users.get(sub).email == "new@example.ru"
    (notice,) = outbox(live, phone)  # the account's phone was told of the new e-mail
    assert "добавлен новый контакт" in notice.body

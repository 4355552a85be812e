"""The app with its real delivery adapters: SMS over HTTP to the fake gateway (a real HTTP
server), e-mail over SMTP to a local aiosmtpd server; and both of them down."""

from __future__ import annotations

import re

import requests
from sqlalchemy import func, select

from idp.adapters.sql.models import User, Verification
from tests.fakes.sms_gateway import SmsGateway
from tests.idp.test_delivery import LoopbackController, Mailbox
from tests.idp.test_registration_flow import NEW_PASSWORD, post_form, step1


def count(live, model) -> int:
    from idp.extensions import db

    with live.ctx():
        return db.session.scalar(select(func.count()).select_from(model))


def test_registration_by_sms_and_e_mail_through_the_real_adapters(make_live):
    mailbox = Mailbox()
    smtp = LoopbackController(mailbox, hostname="127.0.0.1", port=0)
    smtp.start()
    try:
        with SmsGateway(token="gw-token") as gateway:
            live = make_live(
                IDP_SMS_GATEWAY_URL=gateway.url,
                IDP_SMS_GATEWAY_TOKEN="gw-token",
                IDP_SMTP_HOST="127.0.0.1",
                IDP_SMTP_PORT=str(smtp.port),
                IDP_SMTP_SECURITY="none",
            )
            http = requests.Session()
            assert step1(http, live, "+7 999 555-77-01").status_code == 303
            (sms,) = gateway.messages
            assert sms.to == "+79995557701"
            code = re.search(r"\b(\d{6})\b", sms.text).group(1)
            assert post_form(http, live, "/register/confirm", code=code).status_code == 303
            assert (
                post_form(http, live, "/register/password", password=NEW_PASSWORD).status_code
                == 303
            )

            other = requests.Session()
            assert step1(other, live, "mail@example.ru").status_code == 303
            body = mailbox.parsed(0).get_body(("plain",)).get_content()
            link = re.search(r"https?://\S+/confirm/[\w\-]+", body).group(0)
            assert link.startswith(live.url)
            assert post_form(other, live, link[len(live.url) :]).status_code == 303
    finally:
        smtp.stop()


def test_gateway_and_mail_server_down_leave_nothing_half_created(make_live):
    live = make_live(
        IDP_SMS_GATEWAY_URL="http://127.0.0.1:1/api/v1/sms",
        IDP_SMTP_HOST="127.0.0.1",
        IDP_SMTP_PORT="1",
        IDP_SMTP_SECURITY="none",
    )
    for contact in ("+7 999 555-77-02", "down@example.ru"):
        response = step1(requests.Session(), live, contact)
        assert response.status_code == 503
        assert "Не удалось отправить сообщение" in response.text
    assert count(live, Verification) == 0 and count(live, User) == 0

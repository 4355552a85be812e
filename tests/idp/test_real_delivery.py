"""The app with its real delivery adapters behind the outbox and its worker: SMS over HTTP
to the fake gateway (a real HTTP server), e-mail over SMTP to a local aiosmtpd server; the
gateway blocked, failing, and down; a worker restarted and a worker that died mid-send."""

from __future__ import annotations

import re

import pytest
import requests
from sqlalchemy import func, select

from idp.adapters.sql.models import User, Verification
from tests.fakes.sms_gateway import SmsGateway
from tests.idp.test_delivery import LoopbackController, Mailbox
from tests.idp.test_registration_flow import NEW_PASSWORD, post_form, step1
from tests.support import wait_for


def count(live, model) -> int:
    from idp.extensions import db

    with live.ctx():
        return db.session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def mailbox():
    box = Mailbox()
    smtp = LoopbackController(box, hostname="127.0.0.1", port=0)
    smtp.start()
    box.port = smtp.port
    yield box
    smtp.stop()


@pytest.fixture
def gateway():
    with SmsGateway(token="gw-token") as gw:
        yield gw


_addresses = iter(range(1, 250))


def start(live, contact: str) -> None:
    """Registration step 1 through the service, from an address of its own (no captcha)."""
    with live.ctx():
        live.services.registration.start(
            "Соколова",
            "Анна",
            None,
            "Пермский край",
            contact,
            True,
            f"198.51.100.{next(_addresses)}",
        )


def real_live(make_live, gateway, mailbox, **kw):
    return make_live(
        IDP_SMS_GATEWAY_URL=gateway.url,
        IDP_SMS_GATEWAY_TOKEN="gw-token",
        IDP_SMTP_HOST="127.0.0.1",
        IDP_SMTP_PORT=str(mailbox.port),
        IDP_SMTP_SECURITY="none",
        **kw,
    )


def test_registration_by_sms_and_e_mail_through_the_real_adapters(make_live, gateway, mailbox):
    live = real_live(make_live, gateway, mailbox)
    http = requests.Session()
    assert step1(http, live, "+7 999 555-77-01").status_code == 303
    (sms,) = wait_for(lambda: gateway.messages, what="the SMS at the gateway")
    assert sms.to == "+79995557701"
    [row] = live.outbox_rows(kind="sms")
    assert sms.idempotency_key == row.message_id  # the gateway can de-duplicate by it
    code = re.search(r"\b(\d{6})\b", sms.text).group(1)
    assert post_form(http, live, "/register/confirm", code=code).status_code == 303
    assert post_form(http, live, "/register/password", password=NEW_PASSWORD).status_code == 303

    other = requests.Session()
    assert step1(other, live, "mail@example.ru").status_code == 303
    wait_for(lambda: mailbox.envelopes, what="the letter at the mail server")
    letter = mailbox.parsed(0)
    [row] = live.outbox_rows(kind="email")
    assert letter["Message-ID"] == f"<{row.message_id}@lk.rt.ru>"
    link = re.search(r"https?://\S+/confirm/[\w\-]+", letter.get_body(("plain",)).get_content())
    assert link.group(0).startswith(live.url)
    assert post_form(other, live, link.group(0)[len(live.url) :]).status_code == 303
    live.drain()
    rows = live.outbox_rows()
    assert {r.state for r in rows} == {"sent"}
    assert all("text" not in r.payload for r in rows)  # the code and the link are gone


def test_the_request_never_waits_on_the_gateway(make_live, gateway, mailbox):
    """The gateway holds every request: registration answers anyway, and the SMS is in flight
    from the worker, not from the request."""
    live = real_live(make_live, gateway, mailbox)
    gateway.block()
    assert step1(requests.Session(), live, "+7 999 555-77-03").status_code == 303
    assert gateway.messages == []  # nothing got through: the request did not wait for it
    wait_for(lambda: gateway.held == 1, what="the worker's send held by the gateway")
    gateway.unblock()
    (sms,) = wait_for(lambda: gateway.messages, what="the SMS once the gateway answers")
    assert sms.to == "+79995557703"


def test_a_restarted_worker_sends_nothing_twice(make_live, gateway, mailbox):
    live = real_live(make_live, gateway, mailbox)
    start(live, "+79995557704")
    start(live, "restart@example.ru")
    live.drain()
    live.stop_worker()
    # Queued while no worker runs: committed, pending, sent by the next worker.
    start(live, "+79995557705")
    start(live, "restart2@example.ru")
    assert [r.state for r in live.outbox_rows()] == ["sent", "sent", "pending", "pending"]
    live.start_worker(live.worker_policy)
    live.drain()
    live.stop_worker()
    live.start_worker(live.worker_policy)  # a third worker finds nothing to do
    live.drain()
    rows = live.outbox_rows()
    assert [r.state for r in rows] == ["sent"] * 4
    keys = [m.idempotency_key for m in gateway.messages]
    assert sorted(keys) == sorted(r.message_id for r in rows if r.kind == "sms")
    ids = [mailbox.parsed(i)["Message-ID"] for i in range(len(mailbox.envelopes))]
    assert sorted(ids) == sorted(f"<{r.message_id}@lk.rt.ru>" for r in rows if r.kind == "email")


def test_a_row_claimed_by_a_worker_that_died_is_sent_once_its_lease_expires(
    make_live, gateway, mailbox
):
    from idp.adapters.sql.outbox import OutboxQueue
    from idp.extensions import db

    live = real_live(make_live, gateway, mailbox, outbox_worker=False)
    start(live, "+79995557706")
    with live.ctx():  # a worker claims the row, then dies before sending
        [claimed] = OutboxQueue(db.session, live.clock).claim(("sms",), 10, lease=60)
    live.start_worker(live.worker_policy)
    with live.ctx():
        assert live.worker.run_once("messages") == 0  # leased: nobody else takes it
    live.clock.advance(61)
    (sms,) = wait_for(lambda: gateway.messages, what="the SMS after the lease expired")
    assert sms.idempotency_key == claimed.message_id
    live.drain()
    [row] = live.outbox_rows()
    assert (row.state, row.attempts) == ("sent", 2)


def test_failures_are_retried_with_backoff_then_the_row_is_dead(
    make_live, gateway, mailbox, caplog
):
    live = real_live(make_live, gateway, mailbox)
    gateway.fail_next(3, "500")  # one send: the adapter's own three tries
    start(live, "+79995557707")
    wait_for(lambda: gateway.messages, what="the SMS on the second attempt")
    live.drain()
    [row] = live.outbox_rows()
    assert (row.state, row.attempts, row.last_error) == ("sent", 2, None)

    gateway.fail_next(1000, "500")
    start(live, "+79995557708")
    live.drain()
    dead = live.outbox_rows(state="dead")
    assert [(r.attempts, r.purpose) for r in dead] == [(4, "code_register")]
    assert "500" in dead[0].last_error
    waits = [float(m) for m in re.findall(r"next in ([\d.]+)s", caplog.text)]
    policy = live.worker_policy
    # one retry of the first row, three of the second: doubling, with jitter (x0.5-1)
    assert len(waits) == 4
    for attempt, wait in zip((1, 1, 2, 3), waits, strict=True):
        full = policy.backoff * 2 ** (attempt - 1)
        assert full / 2 - 0.001 <= wait <= full + 0.001
    dead_lines = [r.getMessage() for r in caplog.records if "dead after" in r.getMessage()]
    assert len(dead_lines) == 1 and dead[0].message_id in dead_lines[0]
    worker_lines = [r.getMessage() for r in caplog.records if "outbox" in r.getMessage()]
    assert not any(re.search(r"\b\d{6}\b", line) for line in worker_lines)  # no code logged
    assert "text" not in dead[0].payload and dead[0].payload["to"] == "+79995557708"


def test_gateway_and_mail_server_down_a_clear_message_and_nothing_sent_later(make_live):
    """The first request is accepted and queued; the worker finds the channel down and the
    next requests are refused at once with the clear message, creating nothing. The queued
    row dies after its retries: nothing reaches the person by surprise later."""
    live = make_live(
        IDP_SMS_GATEWAY_URL="http://127.0.0.1:1/api/v1/sms",
        IDP_SMTP_HOST="127.0.0.1",
        IDP_SMTP_PORT="1",
        IDP_SMTP_SECURITY="none",
    )
    for kind, first, second in (
        ("sms", "+79995557702", "+7 999 555-77-09"),
        ("email", "down@example.ru", "down2@example.ru"),
    ):
        start(live, first)
        wait_for(lambda k=kind: live.outbox_rows(kind=k, state="dead"), what=f"{kind} dead")
        with live.ctx():
            assert live.services.channels.is_down(kind)
        response = step1(requests.Session(), live, second)
        assert response.status_code == 503
        assert "Не удалось отправить сообщение" in response.text
        assert len(live.outbox_rows(kind=kind)) == 1
    assert count(live, Verification) == 2 and count(live, User) == 0
    assert {r.state for r in live.outbox_rows()} == {"dead"}  # terminal: never retried

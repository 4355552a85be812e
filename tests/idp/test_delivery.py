"""Delivery: the SMTP and HTTP SMS adapters against real servers on loopback ports, the
development outbox on both storage profiles, the SMS pumping guard on both stores, and the
delivery service with its Russian templates."""

from __future__ import annotations

import email
import email.policy
import ipaddress
import socket
import ssl
import threading
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from idp.adapters.email_smtp import SmtpEmailSender
from idp.adapters.outbox import (
    OutboxEmailSender,
    OutboxSmsSender,
    latest_messages,
)
from idp.adapters.sms_http import CLOSED, HALF_OPEN, OPEN, HttpSmsSender
from idp.adapters.sql.outbox import RecordingOutbox
from idp.adapters.store_memory import MemoryStore
from idp.adapters.store_redis import RedisStore
from idp.ports import DeliveryFailed, MessageRejected, StoreUnavailable
from idp.services.delivery import (
    NOTICES,
    PURPOSES,
    ChannelHealth,
    DeliveryService,
    MessageTemplates,
    SmsPumpingGuard,
    SmsRefused,
    russian_duration,
)
from tests.fakes.sms_gateway import SmsGateway, sms_parts
from tests.support import wait_for

SUBJECT = "Подтвердите адрес — ЕЛК"
TEXT = "Здравствуйте! Ваша ссылка: https://lk.example/c?t=1"

# --- SMTP: aiosmtpd on a loopback port --------------------------------------------------------


class Mailbox:
    def __init__(self) -> None:
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"

    def parsed(self, i: int = 0):
        return email.message_from_bytes(self.envelopes[i].content, policy=email.policy.default)


class LoopbackController(Controller):
    """Controller on port 0: the kernel picks the port, read back before the first connect."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    """A self-signed certificate for localhost and 127.0.0.1: the server's and client's."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    pem = cert.public_bytes(serialization.Encoding.PEM)
    (folder / "cert.pem").write_bytes(pem)
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    client = ssl.create_default_context(cadata=pem.decode())
    return server, client


def check_login(server, session, envelope, mechanism, auth_data):
    ok = (auth_data.login, auth_data.password) == (b"idp", b"s3cret")
    return AuthResult(success=ok, handled=False)  # not handled: the server answers 535


@pytest.fixture
def smtpd(request):
    """``smtpd(**smtp_parameters)`` starts a server; all are stopped after the test."""
    started = []

    def start(**params):
        mailbox = Mailbox()
        controller = LoopbackController(mailbox, hostname="127.0.0.1", port=0, **params)
        controller.start()
        started.append(controller)
        return controller, mailbox

    yield start
    for controller in started:
        controller.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_smtp_plain_sends_a_russian_multipart_message(smtpd):
    controller, mailbox = smtpd()
    sender = SmtpEmailSender("127.0.0.1", controller.port, security="none")
    sender.send("ivan@example.com", SUBJECT, TEXT, html="<p>Здравствуйте!</p>")
    envelope = mailbox.envelopes[0]
    assert envelope.mail_from == "no-reply@lk.rt.ru"
    assert envelope.rcpt_tos == ["ivan@example.com"]
    raw_headers = envelope.content.split(b"\r\n\r\n")[0]
    assert b"=?utf-8?" in raw_headers  # RFC 2047: no raw 8-bit in Subject or From
    message = mailbox.parsed()
    assert message["Subject"] == SUBJECT
    assert message["From"].addresses[0].display_name == "ЕЛК Ростелеком"
    assert message["Message-ID"].endswith("@lk.rt.ru>") and message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    assert message.get_body(("plain",)).get_content().strip() == TEXT
    assert "Здравствуйте!" in message.get_body(("html",)).get_content()


def test_smtp_without_html_is_plain_text(smtpd):
    controller, mailbox = smtpd()
    SmtpEmailSender("127.0.0.1", controller.port, security="none").send("a@b.ru", "Тема", "Текст")
    message = mailbox.parsed()
    assert message.get_content_type() == "text/plain"
    assert message.get_content_charset() == "utf-8"
    assert message.get_content().strip() == "Текст"


def test_smtp_starttls_with_auth(smtpd, tls):
    server_ctx, client_ctx = tls
    controller, mailbox = smtpd(
        tls_context=server_ctx,
        require_starttls=True,
        authenticator=check_login,
        auth_required=True,
    )
    sender = SmtpEmailSender(
        "127.0.0.1", controller.port, "idp", "s3cret", security="starttls", ssl_context=client_ctx
    )
    sender.send("ivan@example.com", SUBJECT, TEXT)
    assert mailbox.parsed()["Subject"] == SUBJECT


def test_smtp_wrong_password_fails_without_leaking_it(smtpd, tls):
    server_ctx, client_ctx = tls
    controller, mailbox = smtpd(tls_context=server_ctx, authenticator=check_login)
    sender = SmtpEmailSender(
        "127.0.0.1", controller.port, "idp", "wrong-pass", ssl_context=client_ctx
    )
    with pytest.raises(DeliveryFailed) as caught:
        sender.send("ivan@example.com", SUBJECT, TEXT)
    assert "wrong-pass" not in str(caught.value) and "535" in str(caught.value)
    assert mailbox.envelopes == []


def test_smtp_implicit_tls(smtpd, tls):
    server_ctx, client_ctx = tls
    # aiosmtpd 1.4 does not count implicit TLS as TLS for auth_require_tls: it is TLS here.
    controller, mailbox = smtpd(
        ssl_context=server_ctx, authenticator=check_login, auth_require_tls=False
    )
    sender = SmtpEmailSender(
        "127.0.0.1", controller.port, "idp", "s3cret", security="tls", ssl_context=client_ctx
    )
    sender.send("ivan@example.com", SUBJECT, TEXT)
    assert len(mailbox.envelopes) == 1


def test_smtp_starttls_refuses_an_untrusted_certificate(smtpd, tls):
    controller, mailbox = smtpd(tls_context=tls[0])
    with pytest.raises(DeliveryFailed, match="SSLCertVerificationError"):
        SmtpEmailSender("127.0.0.1", controller.port).send("a@b.ru", "Тема", "Текст")
    assert mailbox.envelopes == []


def test_smtp_starttls_never_downgrades(smtpd):
    controller, mailbox = smtpd()  # offers no STARTTLS
    with pytest.raises(DeliveryFailed, match="SMTPNotSupportedError"):
        SmtpEmailSender("127.0.0.1", controller.port).send("a@b.ru", "Тема", "Текст")
    assert mailbox.envelopes == []


def test_smtp_server_down():
    sender = SmtpEmailSender("127.0.0.1", free_port(), security="none", timeout=2)
    with pytest.raises(DeliveryFailed, match="ConnectionRefusedError"):
        sender.send("a@b.ru", "Тема", "Текст")


def test_smtp_configuration_is_checked():
    with pytest.raises(ValueError, match="credentials"):
        SmtpEmailSender("127.0.0.1", 25, "idp", "pw", security="none")
    with pytest.raises(ValueError):
        SmtpEmailSender("127.0.0.1", 25, security="ssl")
    with pytest.raises(ValueError):  # header injection through the recipient
        SmtpEmailSender("127.0.0.1", 25).build("a@b.ru\r\nBcc: x@y.ru", "s", "t")


# --- SMS: the HTTP adapter against the fake gateway ------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def sms_sender(gateway, sleeps=None, clock=None, **kw) -> HttpSmsSender:
    kw.setdefault("timeout", 2)
    return HttpSmsSender(
        gateway.url,
        clock=clock or FakeClock(),
        sleep=(sleeps.append if sleeps is not None else lambda s: None),
        **kw,
    )


PHONE = "+79991234567"
CODE_TEXT = "Код регистрации в ЕЛК: 123456. Никому не сообщайте его."


def test_sms_json_with_basic_auth():
    with SmsGateway(username="elk", password="pw") as gateway:
        sms_sender(gateway, username="elk", password="pw").send(PHONE, CODE_TEXT)
    [message] = gateway.messages
    assert (message.to, message.text, message.sender) == (PHONE, CODE_TEXT, "Rostelecom")
    assert message.content_type == "application/json" and message.parts == 1


def test_sms_form_with_bearer_token():
    with SmsGateway(token="t0ken") as gateway:
        sender = sms_sender(gateway, token="t0ken", body="form", sender_name="RT")
        sender.send(PHONE, CODE_TEXT)
    [message] = gateway.messages
    assert message.content_type == "application/x-www-form-urlencoded"
    assert (message.text, message.sender) == (CODE_TEXT, "RT")


def test_sms_wrong_credentials_are_not_retried():
    with SmsGateway(token="right") as gateway, pytest.raises(DeliveryFailed) as caught:
        sms_sender(gateway, token="wrong").send(PHONE, CODE_TEXT)
    assert gateway.hits == 1 and gateway.messages == []
    assert "wrong" not in str(caught.value)


def test_sms_4xx_is_not_retried_and_does_not_open_the_breaker():
    with SmsGateway() as gateway:
        sender = sms_sender(gateway, breaker_threshold=2)
        for _ in range(3):
            with pytest.raises(DeliveryFailed):
                sender.send("not-a-number", CODE_TEXT)  # the gateway answers 400
        assert gateway.hits == 3 and sender.state == CLOSED


@pytest.mark.parametrize("mode", ["500", "429", "close"])
def test_sms_retries_with_backoff_then_succeeds(mode):
    sleeps: list[float] = []
    with SmsGateway() as gateway:
        gateway.fail_next(2, mode)
        sms_sender(gateway, sleeps, retries=2, backoff=0.2).send(PHONE, CODE_TEXT)
    assert gateway.hits == 3 and len(gateway.messages) == 1
    assert sleeps == [0.2, 0.4]


def test_sms_429_retry_after_is_honoured():
    sleeps: list[float] = []
    with SmsGateway(retry_after=1) as gateway:
        gateway.fail_next(1, "429")
        sms_sender(gateway, sleeps).send(PHONE, CODE_TEXT)
    assert sleeps == [1.0]


def test_sms_gives_up_after_the_retries():
    with SmsGateway() as gateway:
        gateway.fail_next(3, "500")
        with pytest.raises(DeliveryFailed, match="500"):
            sms_sender(gateway, retries=2).send(PHONE, CODE_TEXT)
    assert gateway.hits == 3 and gateway.messages == []


def test_sms_timeout_fails_without_a_second_copy():
    with SmsGateway(hang_seconds=3) as gateway:
        gateway.fail_next(1, "hang")
        with pytest.raises(DeliveryFailed, match="no answer in time"):
            sms_sender(gateway, timeout=0.3, retries=2).send(PHONE, CODE_TEXT)
        assert gateway.hits == 1


def test_sms_gateway_down():
    sender = HttpSmsSender(f"http://127.0.0.1:{free_port()}/sms", sleep=lambda s: None)
    with pytest.raises(DeliveryFailed, match="connection failed"):
        sender.send(PHONE, CODE_TEXT)


def test_sms_breaker_opens_fails_fast_and_half_opens():
    clock = FakeClock()
    with SmsGateway() as gateway:
        sender = sms_sender(gateway, clock=clock, retries=0, breaker_threshold=3, breaker_reset=30)
        gateway.fail_next(3, "500")
        for _ in range(3):
            with pytest.raises(DeliveryFailed):
                sender.send(PHONE, CODE_TEXT)
        assert sender.state == OPEN
        with pytest.raises(DeliveryFailed, match="circuit open"):
            sender.send(PHONE, CODE_TEXT)
        assert gateway.hits == 3  # the open breaker did not call the gateway

        clock.now += 30
        assert sender.state == HALF_OPEN
        gateway.fail_next(1, "500")  # the trial fails: open again, for another 30 s
        with pytest.raises(DeliveryFailed, match="500"):
            sender.send(PHONE, CODE_TEXT)
        assert sender.state == OPEN and gateway.hits == 4

        clock.now += 30
        sender.send(PHONE, CODE_TEXT)  # the trial succeeds: closed
        assert sender.state == CLOSED and len(gateway.messages) == 1


def test_sms_half_open_lets_one_trial_through():
    clock = FakeClock()
    with SmsGateway(hang_seconds=2) as gateway:
        sender = sms_sender(gateway, clock=clock, retries=0, breaker_threshold=1, timeout=1)
        gateway.fail_next(1, "500")
        with pytest.raises(DeliveryFailed):
            sender.send(PHONE, CODE_TEXT)
        clock.now += 30
        gateway.fail_next(1, "hang")
        trial = threading.Thread(
            target=lambda: pytest.raises(DeliveryFailed, sender.send, PHONE, "x")
        )
        trial.start()
        wait_for(lambda: gateway.hits >= 2, what="the trial to reach the gateway")
        with pytest.raises(DeliveryFailed, match="circuit open"):
            sender.send(PHONE, CODE_TEXT)  # while the trial is out, others fail fast
        trial.join(5)
        assert gateway.hits == 2 and sender.state == OPEN


def test_sms_concurrent_sends():
    with SmsGateway() as gateway:
        sender = sms_sender(gateway)
        threads = [
            threading.Thread(target=sender.send, args=(f"+7999123{i:04d}", CODE_TEXT))
            for i in range(20)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
    assert len({m.to for m in gateway.messages}) == 20


def test_sms_configuration_is_checked():
    with pytest.raises(ValueError, match="https"):
        HttpSmsSender("http://sms.example.com/send")
    with pytest.raises(ValueError):
        HttpSmsSender("https://sms.example.com/send", username="u", password="p", token="t")
    with pytest.raises(ValueError):
        HttpSmsSender("https://sms.example.com/send", body="xml")


# --- the development outbox, on both storage profiles -----------------------------------------


def test_outbox_twins_write_rows(live):
    from idp.extensions import db

    with live.ctx():
        OutboxSmsSender(db.session, clock=live.clock).send(PHONE, CODE_TEXT)
        OutboxEmailSender(db.session).send("ivan@example.com", SUBJECT, TEXT, "<p>Привет</p>")
        OutboxSmsSender(db.session).send("+79990000000", "другой")
        db.session.remove()
        newest = latest_messages(db.session)
        assert [m.channel for m in newest] == ["sms", "email", "sms"]
        [mail] = latest_messages(db.session, recipient="ivan@example.com")
        assert (mail.subject, mail.body, mail.html) == (SUBJECT, TEXT, "<p>Привет</p>")
        [sms] = latest_messages(db.session, recipient=PHONE, limit=1)
        assert sms.body == CODE_TEXT and sms.subject is None and sms.created_at > 0
        assert len(latest_messages(db.session, limit=2)) == 2


# --- the SMS pumping guard, on both stores ----------------------------------------------------


@pytest.fixture
def store(live):
    return live.services.store


def test_guard_refuses_numbers_outside_russia(store):
    guard = SmsPumpingGuard(store)
    outbox = RecordingOutbox()
    service = DeliveryService(outbox, store, MessageTemplates(), guard)
    for phone in (
        "+77011234567",
        "+76001234567",
        "+380501234567",
        "+12025550123",
        "+74951234567",
        "+7999123",
        "79991234567",
        "+7 999 123-45-67",
    ):
        with pytest.raises(SmsRefused) as caught:
            service.send_code_sms(phone, "123456", "register", address="198.51.100.1")
        assert caught.value.reason == "destination" and caught.value.retry_after is None
    assert outbox.entries == [] and store.get("sms:total") is None


def test_guard_caps_one_number_per_day(store):
    guard = SmsPumpingGuard(store, per_number_day=5)
    for i in range(5):
        guard.check_and_count(PHONE, f"198.51.100.{i}")
    with pytest.raises(SmsRefused) as caught:
        guard.check_and_count(PHONE, "198.51.100.99")
    assert caught.value.reason == "number" and 0 < caught.value.retry_after <= 86400
    assert store.get("sms:total") == "5"  # the refused SMS counted nowhere


def test_guard_counts_atomically_under_concurrency(store):
    guard = SmsPumpingGuard(store, per_number_day=5)
    barrier, allowed, refused = threading.Barrier(16), [], []

    def request(i: int) -> None:
        barrier.wait()
        try:
            guard.check_and_count(PHONE, f"198.51.100.{i}")
            allowed.append(i)
        except SmsRefused as exc:
            refused.append(exc.reason)

    threads = [threading.Thread(target=request, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(allowed) == 5 and refused == ["number"] * 11


def test_guard_stops_a_walk_through_one_number_range(store):
    guard = SmsPumpingGuard(store, per_prefix_hour=20, per_address_hour=10_000)
    allowed, reasons = 0, set()
    for i in range(1000):
        try:
            guard.check_and_count(f"+7999123{i:04d}", f"2001:db8:{i:x}::1")
            allowed += 1
        except SmsRefused as refused:
            reasons.add(refused.reason)
    assert allowed == 20 and reasons == {"prefix"}
    guard.check_and_count("+79991240000", "192.0.2.1")  # the next range is untouched


def test_guard_caps_one_address_per_hour(store):
    guard = SmsPumpingGuard(store, per_address_hour=10)
    for i in range(10):
        guard.check_and_count(f"+7916{i:03d}1234", "2001:db8:1:2::10")
    with pytest.raises(SmsRefused) as caught:  # the same /64: the same subscriber
        guard.check_and_count("+79261234567", "2001:db8:1:2:ffff::1")
    assert caught.value.reason == "address" and 0 < caught.value.retry_after <= 3600
    guard.check_and_count("+79261234567", "2001:db8:1:3::10")


def test_guard_caps_the_daily_total(store):
    guard = SmsPumpingGuard(store, per_day_total=3)
    for i in range(3):
        guard.check_and_count(f"+7916{i:03d}1234", f"192.0.2.{i}")
    with pytest.raises(SmsRefused, match="total"):
        guard.check_and_count("+79261234567", "192.0.2.200")


def test_guard_fails_closed_when_the_store_is_down():
    guard = SmsPumpingGuard(RedisStore("redis://127.0.0.1:1", timeout=0.2))
    outbox = RecordingOutbox()
    service = DeliveryService(outbox, MemoryStore(), MessageTemplates(), guard)
    with pytest.raises(StoreUnavailable):
        service.send_code_sms(PHONE, "123456", "register", address="192.0.2.1")
    assert outbox.entries == []


# --- the delivery service and its templates ---------------------------------------------------


@pytest.fixture
def delivery():
    """The service with the outbox's twin: what it queued, as the worker would send it."""
    store = MemoryStore()
    outbox = RecordingOutbox()
    service = DeliveryService(outbox, store, MessageTemplates(), SmsPumpingGuard(store))
    return service, outbox, store


def texts(outbox, kind):
    return [e.payload for e in outbox.of(kind)]


@pytest.mark.parametrize("purpose", PURPOSES)
def test_code_sms_is_russian_and_fits_one_sms(delivery, purpose):
    service, outbox, _ = delivery
    service.send_code_sms(PHONE, "123456", purpose, address="192.0.2.1")
    [sent] = outbox.of("sms")
    assert sent.payload["to"] == PHONE and sent.ttl == 600 and sent.purpose == f"code_{purpose}"
    assert "123456" in sent.payload["text"] and "ЕЛК" in sent.payload["text"]
    assert len(sent.payload["text"]) <= 70 and sms_parts(sent.payload["text"]) == 1


@pytest.mark.parametrize("purpose", PURPOSES)
def test_link_email_is_russian_with_an_escaped_html_part(delivery, purpose):
    service, outbox, _ = delivery
    link = "https://lk.example/confirm?t=abc&u=1"
    service.send_link_email("ivan@example.com", link, purpose, ttl_minutes=30)
    [sent] = texts(outbox, "email")
    assert sent["to"] == "ivan@example.com" and "\n" not in sent["subject"]
    assert (
        "ЕЛК" in sent["subject"] and link in sent["text"] and "действует 30 минут " in sent["text"]
    )
    assert (
        "https://lk.example/confirm?t=abc&amp;u=1" in sent["html"]
        and '<html lang="ru">' in sent["html"]
    )
    assert outbox.entries[0].ttl == 30 * 60  # never delivered after the link expired


@pytest.mark.parametrize("notice", NOTICES)
def test_notices_in_both_channels_once_per_interval(delivery, notice):
    service, outbox, _ = delivery
    assert service.notify_contact("phone", PHONE, notice, address="192.0.2.1")
    assert service.notify_contact("email", "ivan@example.com", notice, new_contact="p@q.ru")
    assert not service.notify_contact("email", "ivan@example.com", notice)
    assert not service.notify_contact("phone", PHONE, notice, address="192.0.2.1")
    [sms], [mail] = texts(outbox, "sms"), texts(outbox, "email")
    assert len(sms["text"]) <= 70 and sms_parts(sms["text"]) == 1
    if notice == "contact_changed":
        assert "p***@q.ru" in mail["text"] and "p@q.ru" not in mail["text"]


def test_a_decoy_sms_costs_the_same_and_sends_nothing(delivery):
    service, outbox, _ = delivery
    for i in range(10):
        service.count_decoy_sms(f"+7916{i:03d}1234", "192.0.2.1")
    with pytest.raises(SmsRefused, match="address"):
        service.send_code_sms(PHONE, "123456", "recover", address="192.0.2.1")
    assert outbox.entries == []


def test_a_notice_rolled_back_with_its_change_may_be_queued_again(live):
    """The once-an-hour mark is forgotten when the transaction that queued it rolls back."""
    from idp.extensions import db

    with live.ctx():
        delivery = live.services.delivery
        assert delivery.notify_contact("email", "ivan@example.com", "password_changed")
        db.session.rollback()
        assert delivery.notify_contact("email", "ivan@example.com", "password_changed")
        db.session.commit()
        assert not delivery.notify_contact("email", "ivan@example.com", "password_changed")
        db.session.commit()
    [row] = live.outbox_rows(kind="email")
    assert row.purpose == "password_changed" and row.payload["to"] == "ivan@example.com"


def test_a_channel_marked_down_refuses_codes_and_links_but_queues_notices(delivery):
    service, outbox, store = delivery
    health = ChannelHealth(store, threshold=2, reset=30)
    service = DeliveryService(outbox, store, MessageTemplates(), SmsPumpingGuard(store), health)
    health.failed("sms")
    service.send_code_sms(PHONE, "123456", "register", address="192.0.2.1")  # one failure: up
    health.failed("sms")
    with pytest.raises(DeliveryFailed):
        service.send_code_sms(PHONE, "654321", "register", address="192.0.2.1")
    with pytest.raises(DeliveryFailed):
        service.count_decoy_sms(PHONE, "192.0.2.1")  # a decoy costs what a code costs
    service.send_link_email("ivan@example.com", "https://lk.example/c", "register")
    assert service.notify_contact("phone", PHONE, "password_changed", address="192.0.2.1")
    assert [e.purpose for e in outbox.entries] == [
        "code_register",
        "link_register",
        "password_changed",
    ]
    assert store.get("sms:total") == "2"  # the refused code cost the caller nothing
    health.succeeded("sms")
    service.send_code_sms(PHONE, "111111", "register", address="192.0.2.1")


def test_system_notices_are_capped_per_recipient_not_shared(delivery):
    service, outbox, store = delivery
    service = DeliveryService(
        outbox, store, MessageTemplates(), SmsPumpingGuard(store), system_per_day=2
    )
    for n in range(3):
        account = f"15900000000{n}"
        assert service.notify_system(
            "phone", PHONE, "account_moved", about=account, number=account
        ) is (n < 2)
    other = "+79161234567"
    assert service.notify_system("phone", other, "account_moved", about="1", number="1")
    assert not service.notify_system("phone", "+74951234567", "account_moved", number="1")
    assert [e.payload["to"] for e in outbox.entries] == [PHONE, PHONE, other]


def test_service_rejects_unknown_names(delivery):
    service, outbox, _ = delivery
    with pytest.raises(ValueError):
        service.send_code_sms(PHONE, "1", "login", address="192.0.2.1")
    with pytest.raises(ValueError):
        service.notify_contact("phone", PHONE, "password_changed")  # no address for the guard
    with pytest.raises(ValueError):
        service.notify_contact("fax", PHONE, "password_changed")
    assert outbox.entries == []


def test_sms_4xx_is_a_rejected_message_and_smtp_keeps_the_message_id(smtpd):
    """What the worker needs from the adapters: a refusal it must not retry, and a stable
    Message-ID (de-duplication by the outbox row's id)."""
    with SmsGateway(token="right") as gateway:
        with pytest.raises(MessageRejected):
            HttpSmsSender(gateway.url, token="wrong").send(PHONE, "x", message_id="m-1")
        HttpSmsSender(gateway.url, token="right").send(PHONE, "x", message_id="m-2")
    assert [m.idempotency_key for m in gateway.messages] == ["m-2"]
    controller, mailbox = smtpd()
    sender = SmtpEmailSender("127.0.0.1", controller.port, security="none")
    sender.send("ivan@example.com", SUBJECT, TEXT, message_id="0b5e-42")
    assert mailbox.parsed()["Message-ID"] == "<0b5e-42@lk.rt.ru>"


def test_while_a_channel_is_down_taken_and_unknown_contacts_answer_as_free_ones(live):
    """No enumeration through an outage: every path that would send a code or link refuses,
    including those that send only a notice (a taken contact) or nothing (an unknown one)."""
    from tests.support import make_user

    _, phone = make_user(live)
    _, mail = make_user(live, login="taken@example.ru")
    with live.ctx():
        for channel in ("sms", "email"):
            for _ in range(3):
                live.services.channels.failed(channel)
        services = live.services
        for contact in (phone, "+79995550999", mail, "free@example.ru"):
            with pytest.raises(DeliveryFailed):
                services.registration.start(
                    "Орлова", "Вера", None, "Пермский край", contact, True, "192.0.2.9"
                )
            with pytest.raises(DeliveryFailed):
                services.recovery.start(contact, "192.0.2.9")
    assert live.outbox_rows() == []


@pytest.mark.parametrize(
    ("minutes", "said"),
    [
        (24 * 60, "24 часа"),
        (60, "1 час"),
        (30, "30 минут"),
        (21, "21 минуту"),
        (90, "1 час 30 минут"),
        (5 * 60, "5 часов"),
        (11 * 60, "11 часов"),
    ],
)
def test_link_validity_is_said_as_the_pages_say_it(minutes, said):
    """The registration e-mail said «1440 мин.» while the page said «24 часа»."""
    assert russian_duration(minutes) == said


def test_registration_link_email_says_24_hours(delivery):
    service, outbox, _ = delivery
    service.send_link_email(
        "ivan@example.com", "https://lk.example/c", "register", ttl_minutes=1440
    )
    [sent] = texts(outbox, "email")
    assert "Ссылка действует 24 часа" in sent["text"] and "1440" not in sent["text"]
    assert "Ссылка действует 24 часа" in sent["html"]

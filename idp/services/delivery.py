"""Delivery of codes, links and notices to a person's phone or mailbox.

* :class:`MessageTemplates` renders the Russian texts in ``idp/web/templates/messages/`` with
  plain Jinja2 (this module never imports Flask).
* :class:`SmsPumpingGuard` refuses SMS that would only earn money for someone else
  (checklist item 20, "SMS pumping" / toll fraud): destinations outside Russia, and more
  than a few messages per number, per number range, per client address or per day in all.
* :class:`DeliveryService` puts the two together and queues each message in the transactional
  outbox; ``idp worker`` (:mod:`idp.services.outbox_worker`) hands it to the ports
  :class:`~idp.ports.SmsSender` and :class:`~idp.ports.EmailSender` after the commit.
* :class:`ChannelHealth` is what the worker learnt about the gateway and the mail server.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from dataclasses import dataclass
from pathlib import Path

import phonenumbers
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)

from idp.domain.errors import IdpError
from idp.ports import DeliveryFailed, EphemeralStore

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "web" / "templates" / "messages"
PURPOSES = ("register", "recover", "change_contact", "social_link")
NOTICES = (
    "contact_in_use",
    "contact_changed",
    "contact_added",
    "password_changed",
    "password_set",
    "account_moved",
)
HOUR, DAY = 3600, 86400
# Kazakhstan shares the +7 country code: its numbers are +7 6xx and +7 7xx.
_KAZAKHSTAN = ("+76", "+77")


class SmsRefused(IdpError):
    """An SMS was not sent: ``reason`` is ``destination``, ``number``, ``prefix``,
    ``address`` or ``total``; ``retry_after`` seconds, None when waiting will not help."""

    code = "sms_refused"

    def __init__(self, reason: str, retry_after: int | None) -> None:
        super().__init__(f"SMS refused: {reason}")
        self.reason = reason
        self.retry_after = retry_after


def mask_contact(value: str) -> str:
    """``i***@example.com`` or ``+7999***4567``: recognisable to its owner only."""
    if "@" in value:
        local, _, domain = value.rpartition("@")
        return f"{local[:1]}***@{domain}"
    return value[:5] + "***" + value[-4:] if len(value) > 9 else "***"


def _plural(n: int, one: str, few: str, many: str) -> str:
    """Russian plural form for ``n``: 1 час, 2 часа, 5 часов, 21 час, 11 часов."""
    if n % 10 == 1 and n % 100 != 11:
        return one
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return few
    return many


def russian_duration(minutes: int) -> str:
    """«24 часа», «1 час», «30 минут», «1 час 30 минут»: as the pages say it."""
    hours, rest = divmod(minutes, 60)
    parts = []
    if hours:
        parts.append(f"{hours} {_plural(hours, 'час', 'часа', 'часов')}")
    if rest or not hours:
        parts.append(f"{rest} {_plural(rest, 'минуту', 'минуты', 'минут')}")
    return " ".join(parts)


def _digest(value: str) -> str:
    # Store keys carry no phone numbers or addresses in clear (the store may be shared).
    return hashlib.sha256(value.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str | None


class MessageTemplates:
    """``sms/<name>.txt`` → one line; ``email/<name>.{subject.txt,txt,html}`` → an e-mail."""

    def __init__(self, directory: Path | str = TEMPLATES_DIR) -> None:
        self._env = Environment(
            loader=FileSystemLoader(str(directory)),
            autoescape=select_autoescape(("html",), default_for_string=False, default=False),
            undefined=StrictUndefined,  # a missing variable is a bug, not an empty gap
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["mask"] = mask_contact

    def sms(self, name: str, **context: object) -> str:
        text = self._env.get_template(f"sms/{name}.txt").render(context)
        return " ".join(text.split())

    def email(self, name: str, **context: object) -> RenderedEmail:
        subject = self._env.get_template(f"email/{name}.subject.txt").render(context)
        text = self._env.get_template(f"email/{name}.txt").render(context)
        try:
            html = self._env.get_template(f"email/{name}.html").render(context)
        except TemplateNotFound:
            html = None
        return RenderedEmail(" ".join(subject.split()), text.strip() + "\n", html)


class SmsPumpingGuard:
    """Caps on SMS, counted in the shared :class:`~idp.ports.EphemeralStore`.

    Each cap is a window that starts with its first SMS: ``per_number_day`` to one number,
    ``per_prefix_hour`` to one number range (the number without its last four digits, which
    is how pumping walks premium ranges), ``per_address_hour`` from one client address (an
    IPv6 client by its /64, which one subscriber holds whole), ``per_day_total`` in all.

    A refused SMS costs none of the caps. Each allowed one is counted with ``incr``, whose
    result decides: concurrent callers cannot all slip under a cap. Store errors propagate
    as :class:`~idp.ports.StoreUnavailable`: without counters, no SMS (fail closed).
    """

    def __init__(
        self,
        store: EphemeralStore,
        per_number_day: int = 5,
        per_prefix_hour: int = 20,
        per_address_hour: int = 10,
        per_day_total: int = 10000,
        allowed_countries: tuple[str, ...] = ("7",),
        mobile_only: bool = True,
    ) -> None:
        self._store = store
        self._caps = {
            "number": (per_number_day, DAY),
            "prefix": (per_prefix_hour, HOUR),
            "address": (per_address_hour, HOUR),
            "total": (per_day_total, DAY),
        }
        self._countries = tuple(allowed_countries)
        self._mobile_only = mobile_only

    def check_destination(self, phone_e164: str) -> None:
        """Refuse a number that is malformed, not Russian, or (by default) not mobile."""
        try:
            number = phonenumbers.parse(phone_e164, None)
        except phonenumbers.NumberParseException:
            raise SmsRefused("destination", None) from None
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        if (
            e164 != phone_e164
            or str(number.country_code) not in self._countries
            or (number.country_code == 7 and phone_e164.startswith(_KAZAKHSTAN))
            or not phonenumbers.is_valid_number(number)
        ):
            raise SmsRefused("destination", None)
        # Landlines cannot read an SMS; "sending" to them is how premium ranges get billed.
        if self._mobile_only and phonenumbers.number_type(number) not in (
            phonenumbers.PhoneNumberType.MOBILE,
            phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
        ):
            raise SmsRefused("destination", None)

    def check_and_count(self, phone_e164: str, address: str) -> None:
        """Count one SMS to ``phone_e164`` asked for from ``address``, or raise SmsRefused."""
        self.check_destination(phone_e164)
        keys = {
            "number": f"sms:number:{_digest(phone_e164)}",
            "prefix": f"sms:prefix:{_digest(phone_e164[:-4])}",
            "address": f"sms:address:{_digest(_network(address))}",
            "total": "sms:total",
        }
        # First read every counter, so that a refusal by one leaves the others untouched.
        for reason, key in keys.items():
            if int(self._store.get(key) or 0) >= self._caps[reason][0]:
                raise self._refuse(reason, key)
        # Then count; a concurrent caller may have taken the last slot since the read.
        for reason, key in keys.items():
            cap, window = self._caps[reason]
            if self._store.incr(key, window) > cap:
                raise self._refuse(reason, key)

    def _refuse(self, reason: str, key: str) -> SmsRefused:
        if reason == "total":
            log.error("SMS daily total reached: every SMS is refused until the window ends")
        else:
            log.warning("SMS refused: %s cap reached", reason)
        return SmsRefused(reason, max(1, self._store.ttl(key)))


def _network(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


class ChannelHealth:
    """Whether the SMS gateway or the mail server is down, as the outbox worker found it,
    kept in the shared store so that every replica's requests see it.

    ``threshold`` failed deliveries in a row (within ``reset`` seconds) mark the channel down
    for ``reset`` seconds; a success clears it. While a channel is down, a request that would
    send a code or a link refuses at once (:class:`~idp.ports.DeliveryFailed`, the "could not
    send" page) instead of queueing a message the person would wait for in vain.
    """

    def __init__(self, store: EphemeralStore, threshold: int = 3, reset: int = 30) -> None:
        self._store = store
        self._threshold = threshold
        self._reset = reset

    def is_down(self, channel: str) -> bool:
        return self._store.get(f"delivery:down:{channel}") is not None

    def failed(self, channel: str) -> None:
        if self._store.incr(f"delivery:failures:{channel}", self._reset) < self._threshold:
            return
        down = f"delivery:down:{channel}"
        if self._store.add(down, "1", self._reset):
            log.error("%s channel is down: requests are refused for %ss", channel, self._reset)
        else:
            self._store.set(down, "1", self._reset)  # still failing: stay down

    def succeeded(self, channel: str) -> None:
        if self._store.get(f"delivery:failures:{channel}") is not None:
            self._store.delete(f"delivery:failures:{channel}")
            if self._store.take(f"delivery:down:{channel}") is not None:
                log.info("%s channel is back", channel)


class DeliveryService:
    """Codes, links and notices, rendered, checked and queued in the caller's transaction.

    Nothing is sent here: each message becomes an outbox row (``outbox``, a
    :class:`~idp.adapters.sql.outbox.SqlOutbox`) that commits with the caller's change and is
    delivered by ``idp worker``. Every SMS passes the pumping guard first. A code or a link is
    refused at once while its channel is down (:class:`ChannelHealth`). Notices go at most once
    per ``notice_interval`` to one contact for one notice, so that a stranger who keeps
    "registering" someone else's number cannot flood its owner; for an SMS the guard still
    counts, so that a registered number and a free one cost the caller the same (no
    enumeration by rate limits). System notices (:meth:`notify_system`) have no client
    address: they are capped per recipient instead, and dropped with a log line over the cap.
    """

    def __init__(
        self,
        outbox,
        store: EphemeralStore,
        templates: MessageTemplates,
        guard: SmsPumpingGuard,
        health: ChannelHealth | None = None,
        notice_interval: int = HOUR,
        code_ttl: int = 600,
        system_per_day: int = 10,
    ) -> None:
        self._outbox = outbox
        self._store = store
        self._templates = templates
        self._guard = guard
        self._health = health or ChannelHealth(store)
        self._notice_interval = notice_interval
        self._code_ttl = code_ttl
        self._system_per_day = system_per_day

    def _check_up(self, channel: str) -> None:
        if self._health.is_down(channel):
            raise DeliveryFailed(f"{channel} channel is down")

    def check_available(self, kind: str) -> None:
        """Refuse as a code or link to a ``phone`` or ``email`` contact would be refused now
        (DeliveryFailed while its channel is down): for the paths that send nothing, or only
        a notice, so that a taken or unknown contact answers as a free one does."""
        self._check_up("sms" if kind == "phone" else "email")

    def send_code_sms(
        self, phone: str, code: str, purpose: str, *, address: str, ref: str | None = None
    ) -> None:
        """Raises SmsRefused, DeliveryFailed or StoreUnavailable; nothing is queued then."""
        _check(purpose, PURPOSES)
        text = self._templates.sms(f"code_{purpose}", code=code)
        self._check_up("sms")
        self._guard.check_and_count(phone, address)
        payload = {"to": phone, "text": text}
        self._outbox.add("sms", f"code_{purpose}", payload, ttl=self._code_ttl, ref=ref)

    def count_decoy_sms(self, phone: str, address: str) -> None:
        """Pass the guard for an SMS that is deliberately not sent (an unknown contact in
        recovery), so that known and unknown numbers cost the caller the same."""
        self.check_available("phone")
        self._guard.check_and_count(phone, address)

    def send_link_email(
        self,
        to: str,
        link: str,
        purpose: str,
        *,
        ttl_minutes: int | None = None,
        ref: str | None = None,
    ) -> None:
        _check(purpose, PURPOSES)
        context: dict[str, object] = {"link": link}
        if ttl_minutes is not None:
            context["ttl_minutes"] = ttl_minutes
            context["validity"] = russian_duration(ttl_minutes)
        message = self._templates.email(f"link_{purpose}", **context)
        self._check_up("email")
        payload = {"to": to, "subject": message.subject, "text": message.text}
        payload["html"] = message.html
        ttl = (ttl_minutes or 60) * 60
        self._outbox.add("email", f"link_{purpose}", payload, ttl=ttl, ref=ref)

    def notify_contact(
        self,
        kind: str,
        value: str,
        template: str,
        *,
        address: str | None = None,
        about: str = "",
        **context,
    ) -> bool:
        """Queue notice ``template`` to a ``phone`` or ``email`` contact; False when it was
        already queued within the interval (per ``about``: notices about different things, such
        as two billing accounts, are not merged). An SMS needs the ``address`` that caused it."""
        _check(template, NOTICES)
        if kind == "phone":
            if address is None:
                raise ValueError("an SMS notice needs the client address for the guard")
            payload = self._render(kind, value, template, context)
            self._guard.check_and_count(value, address)
        else:
            payload = self._render(kind, value, template, context)
        return self._queue_once(kind, value, template, about, payload)

    def notify_system(
        self, kind: str, value: str, template: str, *, about: str = "", **context
    ) -> bool:
        """Queue a notice that no client asked for (an event of another service): capped at
        ``system_per_day`` per recipient; over the cap, or to a number no SMS may go to, it
        is dropped with a log line and False (never raised: a consumer must not stall)."""
        _check(template, NOTICES)
        payload = self._render(kind, value, template, context)
        if kind == "phone":
            try:
                self._guard.check_destination(value)
            except SmsRefused:
                log.warning(
                    "system notice %s to %s dropped: no SMS to this number",
                    template,
                    mask_contact(value),
                )
                return False
        count = self._store.incr(f"notice:system:{kind}:{_digest(value)}", DAY)
        if count > self._system_per_day:
            log.warning(
                "system notice %s to %s dropped: %d today (cap %d)",
                template,
                mask_contact(value),
                count,
                self._system_per_day,
            )
            return False
        return self._queue_once(kind, value, template, about, payload)

    def _render(self, kind: str, value: str, template: str, context: dict) -> dict:
        if kind == "phone":
            return {"to": value, "text": self._templates.sms(template, **context)}
        if kind == "email":
            message = self._templates.email(template, **context)
            return {
                "to": value,
                "subject": message.subject,
                "text": message.text,
                "html": message.html,
            }
        raise ValueError(f"unknown contact kind {kind!r}")

    def _queue_once(self, kind: str, value: str, template: str, about: str, payload) -> bool:
        key = _notice_key(kind, value, f"{template}:{about}")
        if not self._store.add(key, "1", self._notice_interval):
            return False
        # Not queued if the caller's transaction rolls back: then not "already sent" either.
        self._outbox.on_rollback(lambda: self._store.delete(key))
        channel = "sms" if kind == "phone" else "email"
        self._outbox.add(channel, template, payload, ttl=DAY, ref=about or None)
        return True


def _notice_key(kind: str, value: str, template: str) -> str:
    return f"notice:{template}:{kind}:{_digest(value)}"


def _check(name: str, allowed: tuple[str, ...]) -> None:
    if name not in allowed:
        raise ValueError(f"{name!r} is not one of {', '.join(allowed)}")

"""SMTP :class:`~idp.ports.EmailSender`: hands one message to the company's submission server.

* Transport: RFC 5321 (SMTP) as message submission, RFC 6409. ``security="tls"`` is implicit
  TLS from the first byte (RFC 8314 §3, port 465, the preferred form); ``"starttls"`` upgrades
  a plain connection with STARTTLS (RFC 3207, port 587) and refuses to go on if the server
  does not offer it; ``"none"`` is for a relay on the loopback or a trusted segment only.
  Certificates are verified against the system trust store unless a context is passed.
* Authentication: AUTH (RFC 4954) when credentials are given, only inside TLS.
* Message: RFC 5322 with MIME (RFC 2045-2049): UTF-8 text, an optional HTML alternative
  (``multipart/alternative``, RFC 2046 §5.1.4), non-ASCII headers as RFC 2047 encoded words,
  ``Message-ID`` and ``Date`` set here because a submission server need not add them.

Every transport failure becomes :class:`~idp.ports.DeliveryFailed` with a message that names
the server and the error class, never the credentials.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

from idp.ports import DeliveryFailed, MessageRejected

log = logging.getLogger(__name__)

SECURITY_MODES = ("starttls", "tls", "none")
DEFAULT_SENDER = "ЕЛК Ростелеком <no-reply@lk.rt.ru>"


class SmtpEmailSender:
    """Sends each message over a fresh SMTP session (no pooled connection to go stale)."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str | None = None,
        password: str | None = None,
        security: str = "starttls",
        sender: str = DEFAULT_SENDER,
        timeout: float = 10,
        ssl_context: ssl.SSLContext | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {', '.join(SECURITY_MODES)}")
        if (username is None) != (password is None):
            raise ValueError("SMTP username and password go together")
        if username is not None and security == "none":
            # RFC 8314 §5: credentials never travel in clear text.
            raise ValueError("SMTP credentials require security='tls' or 'starttls'")
        self._host = host
        self._port = int(port)
        self._username = username
        self._password = password
        self._security = security
        self._timeout = timeout
        self._context = ssl_context or ssl.create_default_context()
        self._local_hostname = local_hostname
        with_name = EmailMessage()
        with_name["From"] = sender  # parsed now: a malformed sender stops the start, not a send
        self._sender = with_name["From"]
        self._envelope_from = self._sender.addresses[0].addr_spec
        self._domain = self._sender.addresses[0].domain or "localhost"

    def __repr__(self) -> str:
        return f"SmtpEmailSender({self._host}:{self._port}, security={self._security!r})"

    def build(
        self,
        to: str,
        subject: str,
        text: str,
        html: str | None = None,
        message_id: str | None = None,
    ) -> EmailMessage:
        """The RFC 5322 message for ``to``; raises ValueError for a header with CR or LF.
        ``message_id`` (the outbox row's id) makes the ``Message-ID`` (RFC 5322 §3.6.4)
        stable across retries, so a copy sent twice is recognisably one message."""
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = Address(addr_spec=to)
        message["Subject"] = " ".join(subject.split())
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = (
            f"<{message_id}@{self._domain}>" if message_id else make_msgid(domain=self._domain)
        )
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834 §5: no auto-replies back
        message.set_content(text, charset="utf-8")
        if html is not None:
            message.add_alternative(html, subtype="html", charset="utf-8")
        return message

    def send(
        self,
        to: str,
        subject: str,
        text: str,
        html: str | None = None,
        message_id: str | None = None,
    ) -> None:
        message = self.build(to, subject, text, html, message_id)
        try:
            with self._connect() as smtp:
                if self._username is not None:
                    smtp.login(self._username, self._password or "")
                smtp.send_message(message, from_addr=self._envelope_from, to_addrs=[to])
        except smtplib.SMTPRecipientsRefused:
            # The server is fine; this address is not. Retrying would only be refused again.
            log.warning("e-mail via %s:%s: recipient refused", self._host, self._port)
            raise MessageRejected(f"SMTP {self._host}:{self._port}: recipient refused") from None
        except (smtplib.SMTPException, OSError) as exc:  # ssl.SSLError and timeouts are OSError
            code = getattr(exc, "smtp_code", None)
            detail = f"{type(exc).__name__}" + (f" {code}" if code else "")
            log.warning("e-mail via %s:%s failed: %s", self._host, self._port, detail)
            raise DeliveryFailed(f"SMTP {self._host}:{self._port}: {detail}") from None
        log.info("e-mail %s handed to %s:%s", message["Message-ID"], self._host, self._port)

    def _connect(self) -> smtplib.SMTP:
        if self._security == "tls":
            return smtplib.SMTP_SSL(
                self._host,
                self._port,
                local_hostname=self._local_hostname,
                timeout=self._timeout,
                context=self._context,
            )
        smtp = smtplib.SMTP(
            self._host, self._port, local_hostname=self._local_hostname, timeout=self._timeout
        )
        if self._security == "none":
            return smtp
        try:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                # A stripped STARTTLS offer is the classic downgrade; never fall back to clear.
                raise smtplib.SMTPNotSupportedError("server does not offer STARTTLS")
            smtp.starttls(context=self._context)
            smtp.ehlo()  # RFC 3207 §4.2: forget what was learnt before TLS
        except BaseException:
            smtp.close()
            raise
        return smtp

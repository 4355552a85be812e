"""A fake SMS gateway: a real HTTP/1.1 server on a loopback port, in a thread.

It speaks the protocol of a typical HTTP SMS gateway, the one
:class:`idp.adapters.sms_http.HttpSmsSender` is written for:

``POST /api/v1/sms``
    Authentication, as configured: HTTP Basic (RFC 7617), ``Authorization: Bearer <token>``
    (RFC 6750 §2.1), or none. Missing or wrong credentials → ``401`` with
    ``WWW-Authenticate`` and ``{"error": "unauthorized"}``.

    Body: ``application/json`` (one object) or ``application/x-www-form-urlencoded`` (each
    field once), UTF-8, with ``Content-Length``. Fields:

    * ``to``: the destination in E.164, ``+`` and 8 to 15 digits;
    * ``text``: 1 to 1000 characters;
    * ``from``: the alphanumeric sender name, 1 to 11 letters, digits or spaces (the limit of
      a GSM alphanumeric originator address).

    Another content type → ``415``; no length → ``411``; a malformed body or field → ``400``
    ``{"error": "invalid_request", "field": "<name>"}``.

    An ``Idempotency-Key`` header is recorded with the message (not acted on: tests count
    copies per key to prove the client never sends one message twice).

    Accepted → ``200`` ``{"id": "<uuid>", "status": "accepted", "parts": <n>}``, where ``n``
    is the number of SMS the text is billed as: GSM 03.38 7-bit text fits 160 characters in
    one SMS and 153 per part when split; anything else (Cyrillic) is UCS-2: 70, then 67.

Any other path → ``404``; another method on the path → ``405``.

Scripted failures, for the next requests to the path in order, before authentication
(a sick gateway is sick for everyone): ``fail_next(n, "500")`` answers ``500``;
``"429"`` answers ``429`` with ``Retry-After: <retry_after>``; ``"hang"`` reads the request
and waits ``hang_seconds`` (longer than the client's timeout) before closing without an
answer; ``"close"`` reads the request and closes the connection without an answer. None of
them records a message.

``block()`` makes every request wait (after reading it) until ``unblock()``; ``held`` counts
the requests waiting so (a test can see that a send is in flight and who is waiting on it).

``gateway.messages`` holds the accepted messages, ``gateway.hits`` counts every request to the
path, failed ones included.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import threading
import uuid
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

PATH = "/api/v1/sms"
FAILURES = ("500", "429", "hang", "close")
_E164 = re.compile(r"^\+\d{8,15}$")
_SENDER = re.compile(r"^[A-Za-z0-9 ]{1,11}$")
GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "\f^{}\\[~]|€"


def sms_parts(text: str) -> int:
    """How many SMS ``text`` is billed as (3GPP TS 23.038 alphabets, TS 23.040 concatenation)."""
    if all(c in GSM_BASIC or c in GSM_EXTENSION for c in text):
        septets = sum(2 if c in GSM_EXTENSION else 1 for c in text)
        return 1 if septets <= 160 else -(-septets // 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)


@dataclass(frozen=True)
class ReceivedSms:
    id: str
    to: str
    text: str
    sender: str
    content_type: str
    parts: int
    idempotency_key: str | None = None


class SmsGateway:
    """``with SmsGateway(username=..., password=...) as gw: HttpSmsSender(gw.url, ...)``."""

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        hang_seconds: float = 3.0,
        retry_after: int = 0,
    ) -> None:
        self.username, self.password, self.token = username, password, token
        self.hang_seconds = hang_seconds
        self.retry_after = retry_after
        self.messages: list[ReceivedSms] = []
        self.hits = 0
        self._script: deque[str] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._open = threading.Event()
        self._open.set()
        self.held = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "gateway not started"
        return f"http://127.0.0.1:{self._server.server_port}{PATH}"

    def fail_next(self, n: int, mode: str) -> None:
        if mode not in FAILURES:
            raise ValueError(f"mode must be one of {FAILURES}")
        with self._lock:
            self._script.extend([mode] * n)

    def block(self) -> None:
        self._open.clear()

    def unblock(self) -> None:
        self._open.set()

    def _wait_open(self) -> None:
        if self._open.is_set():
            return
        with self._lock:
            self.held += 1
        self._open.wait(30)
        with self._lock:
            self.held -= 1

    def start(self) -> SmsGateway:
        gateway = self

        class Handler(_Handler):
            pass

        Handler.gateway = gateway
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases handlers that are "hanging"
        self._open.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> SmsGateway:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- used by the handler ----------------------------------------------------------------

    def _next_failure(self) -> str | None:
        with self._lock:
            self.hits += 1
            return self._script.popleft() if self._script else None

    def _authorized(self, header: str | None) -> bool:
        if self.token is not None:
            expected = f"Bearer {self.token}"
        elif self.username is not None:
            pair = f"{self.username}:{self.password}".encode()
            expected = "Basic " + base64.b64encode(pair).decode()
        else:
            return True
        return hmac.compare_digest((header or "").encode(), expected.encode())

    def _accept(
        self, fields: dict[str, str], content_type: str, key: str | None = None
    ) -> ReceivedSms:
        message = ReceivedSms(
            id=str(uuid.uuid4()),
            to=fields["to"],
            text=fields["text"],
            sender=fields["from"],
            content_type=content_type,
            parts=sms_parts(fields["text"]),
            idempotency_key=key,
        )
        with self._lock:
            self.messages.append(message)
        return message


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
    gateway: SmsGateway

    def log_message(self, format, *args) -> None:
        return None

    def _answer(self, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        if self.path.split("?")[0] == PATH:
            self._answer(405, {"error": "method_not_allowed"}, {"Allow": "POST"})
        else:
            self._answer(404, {"error": "not_found"})

    def do_POST(self) -> None:
        if self.path.split("?")[0] != PATH:
            self._answer(404, {"error": "not_found"})
            return
        length = self.headers.get("Content-Length")
        raw = self.rfile.read(int(length)) if length and length.isdigit() else b""
        self.gateway._wait_open()
        failure = self.gateway._next_failure()
        if failure in ("hang", "close"):
            if failure == "hang":
                self.gateway._stopping.wait(self.gateway.hang_seconds)
            self.close_connection = True
            return
        if failure == "500":
            self._answer(500, {"error": "internal"})
            return
        if failure == "429":
            retry = {"Retry-After": str(self.gateway.retry_after)}
            self._answer(429, {"error": "rate_limited"}, retry)
            return
        if not self.gateway._authorized(self.headers.get("Authorization")):
            challenge = "Bearer" if self.gateway.token else 'Basic realm="sms"'
            self._answer(401, {"error": "unauthorized"}, {"WWW-Authenticate": challenge})
            return
        if length is None:
            self._answer(411, {"error": "length_required"})
            return
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        try:
            fields = _parse(raw, content_type)
        except _Unsupported:
            self._answer(415, {"error": "unsupported_media_type"})
            return
        except _Invalid as exc:
            self._answer(400, {"error": "invalid_request", "field": exc.field})
            return
        key = self.headers.get("Idempotency-Key")
        message = self.gateway._accept(fields, content_type, key)
        self._answer(200, {"id": message.id, "status": "accepted", "parts": message.parts})


class _Unsupported(Exception):
    pass


class _Invalid(Exception):
    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def _parse(raw: bytes, content_type: str) -> dict[str, str]:
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Invalid("body") from None
    if content_type == "application/json":
        try:
            data = json.loads(decoded)
        except ValueError:
            raise _Invalid("body") from None
        if not isinstance(data, dict):
            raise _Invalid("body")
    elif content_type == "application/x-www-form-urlencoded":
        pairs = parse_qs(decoded, keep_blank_values=True)
        if any(len(values) != 1 for values in pairs.values()):
            raise _Invalid("body")
        data = {name: values[0] for name, values in pairs.items()}
    else:
        raise _Unsupported()
    for name in ("to", "text", "from"):
        if not isinstance(data.get(name), str):
            raise _Invalid(name)
    if not _E164.match(data["to"]):
        raise _Invalid("to")
    if not 1 <= len(data["text"]) <= 1000:
        raise _Invalid("text")
    if not _SENDER.match(data["from"]):
        raise _Invalid("from")
    return {name: data[name] for name in ("to", "text", "from")}

"""HTTP :class:`~idp.ports.SmsSender`: POSTs one message to the company's SMS gateway.

The request is ``POST <url>`` with ``{"to": "+79991234567", "text": "...", "from": "Rostelecom"}``
as JSON or as an HTML form (``application/x-www-form-urlencoded``), authenticated with HTTP
Basic (RFC 7617) or a bearer token (RFC 6750 §2.1). Any 2xx means the gateway accepted it.
The outbox row's message id travels as ``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-
header): a gateway that honours it never bills a retried message twice.

Resilience, so that a sick gateway costs the sign-up page seconds, not minutes:

* Retries: a connection error (nothing reached the gateway) and 5xx / 429 (the gateway said
  so) are retried ``retries`` times with exponential backoff (``backoff``, ×2 each time;
  ``Retry-After`` on 429 is honoured when it fits within ``timeout``). A 4xx other than 429
  is the request's fault and is never retried. A read timeout is not retried either: the
  gateway may already hold the message, and a second copy is a second SMS paid for.
* Circuit breaker: ``breaker_threshold`` failed sends in a row open it; while open, sends fail
  at once without touching the gateway; after ``breaker_reset`` seconds one trial send (a
  single attempt) is let through: success closes the breaker, failure opens it again.

The breaker state is shared by the threads of one process behind a lock; HTTP sessions are
per thread because a ``requests.Session`` is not documented as thread-safe.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import requests

from idp.ports import DeliveryFailed, MessageRejected

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def mask_phone(phone: str) -> str:
    """``+7999***4567``: enough to correlate logs, not enough to collect numbers from them."""
    return phone[:5] + "***" + phone[-4:] if len(phone) > 9 else "***"


class _Retryable(Exception):
    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.delay = delay


class _GatewayUp(Exception):
    """The gateway answered but refused (4xx): delivery failed, the gateway itself is fine."""


class HttpSmsSender:
    def __init__(
        self,
        url: str,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        body: str = "json",
        sender_name: str = "Rostelecom",
        timeout: float = 5,
        retries: int = 2,
        backoff: float = 0.2,
        breaker_threshold: int = 5,
        breaker_reset: float = 30,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        allow_http: bool = False,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("SMS gateway URL must be an absolute http(s) URL")
        if parts.scheme == "http" and not (allow_http or _is_loopback(parts.hostname)):
            raise ValueError("SMS gateway URL must use https (credentials and codes in clear)")
        if body not in ("json", "form"):
            raise ValueError("body must be 'json' or 'form'")
        if token is not None and username is not None:
            raise ValueError("give either a bearer token or a username and password, not both")
        if (username is None) != (password is None):
            raise ValueError("SMS gateway username and password go together")
        if retries < 0 or breaker_threshold < 1:
            raise ValueError("retries must be >= 0 and breaker_threshold >= 1")
        self._url = url
        self._host = parts.hostname  # errors name the host only: the URL may carry a key
        self._auth = (username, password) if username is not None else None
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._body = body
        self._sender_name = sender_name
        self._timeout = timeout
        self._retries = retries
        self._backoff = backoff
        self._threshold = breaker_threshold
        self._reset = breaker_reset
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"HttpSmsSender({self._host}, breaker={self.state})"

    @property
    def state(self) -> str:
        """The breaker state as a caller would meet it now (for health checks and tests)."""
        with self._lock:
            if self._state == OPEN and self._clock() - self._opened_at >= self._reset:
                return HALF_OPEN
            return self._state

    def send(self, phone: str, text: str, message_id: str | None = None) -> None:
        trial = self._admit()
        try:
            self._deliver(phone, text, message_id, attempts=1 if trial else 1 + self._retries)
        except _GatewayUp:
            self._record(success=True, trial=trial)
            raise MessageRejected(f"SMS gateway {self._host} refused the message") from None
        except BaseException:
            self._record(success=False, trial=trial)  # a trial must never stay "running"
            raise
        self._record(success=True, trial=trial)

    # --- the circuit breaker ----------------------------------------------------------------

    def _admit(self) -> bool:
        """Let a send through or fail it fast; True when it is the half-open trial."""
        with self._lock:
            if self._state == CLOSED:
                return False
            if self._state == OPEN and self._clock() - self._opened_at >= self._reset:
                self._state = HALF_OPEN
            if self._state == HALF_OPEN and not self._trial_running:
                self._trial_running = True
                return True
        raise DeliveryFailed(f"SMS gateway {self._host} is unavailable (circuit open)")

    def _record(self, success: bool, trial: bool) -> None:
        with self._lock:
            if trial:
                self._trial_running = False
            if success:
                if self._state != CLOSED:
                    log.info("SMS gateway %s is back: circuit closed", self._host)
                self._state, self._failures = CLOSED, 0
                return
            self._failures += 1
            # A send admitted before the breaker opened and failing late changes nothing.
            if trial or (self._state == CLOSED and self._failures >= self._threshold):
                if self._state != OPEN:
                    log.error("SMS gateway %s is failing: circuit open", self._host)
                self._state, self._opened_at = OPEN, self._clock()

    # --- one send with its retries ----------------------------------------------------------

    def _deliver(self, phone: str, text: str, message_id: str | None, attempts: int) -> None:
        for attempt in range(attempts):
            try:
                self._attempt(phone, text, message_id)
                return
            except _Retryable as exc:
                delay = max(self._backoff * 2**attempt, exc.delay or 0)
                last = attempt == attempts - 1
                if last or delay > self._timeout:
                    log.warning("SMS to %s failed: %s", mask_phone(phone), exc)
                    raise DeliveryFailed(f"SMS gateway {self._host}: {exc}") from None
                self._sleep(delay)

    def _attempt(self, phone: str, text: str, message_id: str | None) -> None:
        payload = {"to": phone, "text": text, "from": self._sender_name}
        as_body = {"json": payload} if self._body == "json" else {"data": payload}
        headers = dict(self._headers)
        if message_id:
            headers["Idempotency-Key"] = message_id
        try:
            response = self._session().post(
                self._url,
                auth=self._auth,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
                **as_body,
            )
        except requests.ConnectionError as exc:  # also ConnectTimeout: nothing was sent
            raise _Retryable(f"connection failed ({type(exc).__name__})") from None
        except requests.Timeout:
            log.warning("SMS to %s: gateway did not answer in time", mask_phone(phone))
            raise DeliveryFailed(f"SMS gateway {self._host}: no answer in time") from None
        except requests.RequestException as exc:
            raise DeliveryFailed(f"SMS gateway {self._host}: {type(exc).__name__}") from None
        status = response.status_code
        if 200 <= status < 300:
            log.info("SMS to %s accepted by %s", mask_phone(phone), self._host)
            return
        if status == 429:
            raise _Retryable("429 too many requests", _retry_after(response))
        if status >= 500:
            raise _Retryable(f"{status} server error")
        log.error("SMS to %s refused by %s: HTTP %s", mask_phone(phone), self._host, status)
        raise _GatewayUp(status)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session


def _retry_after(response: requests.Response) -> float | None:
    """Seconds from a ``Retry-After`` header in its delay-seconds form (RFC 9110 §10.2.3)."""
    raw = response.headers.get("Retry-After", "")
    return float(raw) if raw.strip().isdigit() else None

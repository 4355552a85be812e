"""``idp worker``: delivers the transactional outbox (``outbox_entries``) after commit.

Each lane runs in its own thread so that a slow relying party never holds up an SMS code:
``messages`` (SMS and e-mail) and ``logout`` (back-channel logout POSTs, OIDC Back-Channel
Logout 1.0 §2.5). A lane claims due rows under a lease (:class:`~idp.adapters.sql.outbox.
OutboxQueue`), sends each outside any transaction through the real ports, and then:

* accepted → ``sent`` (never claimed again: a restarted worker sends nothing twice);
* refused for good (:class:`~idp.ports.MessageRejected`), or past the row's ``expires_at``
  (a code nobody can use any more) → ``dead`` at once;
* any other failure → retried after ``backoff · 2^(attempt-1)`` seconds (at most
  ``max_backoff``) with jitter (×0.5–1, so that replicas do not retry in step), and ``dead``
  after ``max_attempts``. Dead rows are logged with their message id, kind, purpose and
  error, never with their payload (it holds codes and links).

A worker that dies between the send and ``sent`` leaves a claimed row whose lease expires:
another worker sends it again with the same message id (``Idempotency-Key`` for the SMS
gateway, ``Message-ID`` for SMTP, the ``jti``-bearing logout token for a relying party), so
at least once, de-duplicable by id.

A lane sleeps until woken (:class:`~idp.ports.Waker`, after a commit that added rows) or for
``poll`` seconds, or until its next retry is due, whichever comes first. Outcomes of SMS and
e-mail sends feed :class:`~idp.services.delivery.ChannelHealth`, which requests read.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from idp.adapters.metrics_twin import NullMetrics
from idp.adapters.sql.outbox import Claimed, OutboxQueue
from idp.ports import (
    DeliveryFailed,
    EmailSender,
    LogoutNotifier,
    MessageRejected,
    Metrics,
    SmsSender,
    StoreUnavailable,
    Waker,
)
from idp.services.delivery import ChannelHealth

log = logging.getLogger(__name__)

LANES: dict[str, tuple[str, ...]] = {"messages": ("sms", "email"), "logout": ("logout",)}
# Purposes whose message carries a one-time code (SMS) or link (e-mail): ``idp_codes_sent``.
ONE_TIME = ("code_", "link_")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 8
    backoff: float = 2.0
    max_backoff: float = 300.0
    lease: float = 60.0  # longer than any one send (the SMS adapter's retries included)

    def delay(self, attempts: int, rng: Callable[[], float] = random.random) -> float:
        base = min(self.max_backoff, self.backoff * 2 ** max(0, attempts - 1))
        return base * (0.5 + rng() / 2)


class OutboxWorker:
    def __init__(
        self,
        queue: OutboxQueue,
        sms: SmsSender,
        email: EmailSender,
        notifier: LogoutNotifier,
        logout_token: Callable[[str, str, str, str], str],
        health: ChannelHealth,
        waker: Waker,
        policy: RetryPolicy | None = None,
        poll: float = 0.5,
        batch: int = 20,
        clock: Callable[[], float] = time.time,
        thread_context: Callable[[], AbstractContextManager] = contextlib.nullcontext,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics or NullMetrics()
        self._queue = queue
        self._sms = sms
        self._email = email
        self._notifier = notifier
        self._logout_token = logout_token
        self._health = health
        self._waker = waker
        self._policy = policy or RetryPolicy()
        self._poll = poll
        self._batch = batch
        self._clock = clock
        self._context = thread_context

    # --- the loop ---------------------------------------------------------------------------

    def run(self, stop: threading.Event, lanes: tuple[str, ...] = tuple(LANES)) -> None:
        """Deliver until ``stop`` is set; one thread per lane, each in ``thread_context``."""
        threads = [
            threading.Thread(target=self._lane, args=(lane, stop), name=f"outbox-{lane}")
            for lane in lanes
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def _lane(self, lane: str, stop: threading.Event) -> None:
        with self._context():
            while not stop.is_set():
                try:
                    handled = self.run_once(lane)
                    self.observe_backlog(lane)
                    wait = 0.0 if handled >= self._batch else self._idle_wait(lane)
                except Exception:  # noqa: BLE001 - a database hiccup must not end the worker
                    log.exception("outbox lane %s failed; retrying", lane)
                    wait = self._poll
                if wait > 0:
                    self._waker.wait(lane, wait)

    def observe_backlog(self, lane: str) -> None:
        """Report the lane's pending rows and the age of the oldest (the delivery lag)."""
        pending, oldest = self._queue.backlog(LANES[lane])
        age = 0.0 if oldest is None else max(0.0, self._clock() - oldest)
        self._metrics.outbox_backlog(lane, pending, age)

    def _idle_wait(self, lane: str) -> float:
        due = self._queue.next_due_in(LANES[lane])
        # A floor, so that a row another worker is claiming right now is no busy loop.
        return self._poll if due is None else max(0.02, min(self._poll, due))

    def run_once(self, lane: str | None = None) -> int:
        """Claim and deliver one batch (of one lane, or of every lane); rows handled."""
        kinds = LANES[lane] if lane else tuple(k for ks in LANES.values() for k in ks)
        rows = self._queue.claim(kinds, self._batch, self._policy.lease)
        for row in rows:
            self._deliver(row)
        return len(rows)

    # --- one row ----------------------------------------------------------------------------

    def _deliver(self, row: Claimed) -> None:
        if self._clock() >= row.expires_at:
            self._bury(row, "expired before it could be delivered")
            return
        try:
            self._send(row)
        except MessageRejected as exc:
            self._channel(row, ok=True)  # the channel works; this message never will
            self._bury(row, str(exc))
            return
        except Exception as exc:  # noqa: BLE001 - every failure is retried, then buried
            error = str(exc) if isinstance(exc, DeliveryFailed) else type(exc).__name__
            self._channel(row, ok=False)
            self._fail(row, error)
            return
        if not self._queue.mark_sent(row):
            log.warning("outbox %s: lease lost before it was marked sent", row.message_id)
        self._channel(row, ok=True)
        self._metrics.delivery(row.kind, "sent")
        if row.purpose.startswith(ONE_TIME):
            self._metrics.code_sent(row.kind)

    def _send(self, row: Claimed) -> None:
        p = row.payload
        if row.kind == "sms":
            self._sms.send(p["to"], p["text"], message_id=row.message_id)
        elif row.kind == "email":
            self._email.send(p["to"], p["subject"], p["text"], p.get("html"), row.message_id)
        elif row.kind == "logout":
            token = self._logout_token(p["client_id"], p["alg"], p["sub"], p["sid"])
            if not self._notifier.send(p["uri"], token):
                raise DeliveryFailed("the relying party did not accept the logout token")
        else:
            raise MessageRejected(f"unknown outbox kind {row.kind!r}")

    def _fail(self, row: Claimed, error: str) -> None:
        delay = self._policy.delay(row.attempts)
        if row.attempts >= self._policy.max_attempts:
            self._bury(row, error)
        elif self._clock() + delay >= row.expires_at:
            self._bury(row, f"{error}; expires before the next attempt")
        else:
            log.warning(
                "outbox %s (%s/%s) attempt %d failed: %s; next in %.3fs",
                row.message_id,
                row.kind,
                row.purpose,
                row.attempts,
                error,
                delay,
            )
            self._metrics.delivery(row.kind, "retry")
            self._queue.retry(row, delay, error)

    def _bury(self, row: Claimed, error: str) -> None:
        log.error(
            "outbox %s (%s/%s) dead after %d attempt(s): %s",
            row.message_id,
            row.kind,
            row.purpose,
            row.attempts,
            error,
        )
        self._metrics.delivery(row.kind, "dead")
        self._queue.bury(row, error)

    def _channel(self, row: Claimed, ok: bool) -> None:
        if row.kind not in ("sms", "email"):
            return
        try:
            if ok:
                self._health.succeeded(row.kind)
            else:
                self._health.failed(row.kind)
        except StoreUnavailable:
            log.warning("channel health not recorded: the store is unavailable")

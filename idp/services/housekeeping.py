"""``idp purge``: records past their use deleted in batches, fit for a cron job.

Each batch is its own short transaction, so a purge never holds locks for long and can be
stopped at any point; batches are safe when two replicas purge at once (see
:mod:`idp.adapters.sql.housekeeping`). What goes, and when:

* verification flows (registration, recovery, contact change) past their expiry;
* authorization codes past their expiry;
* SSO sessions past their expiry, or ended more than a day ago;
* grants whose access token has expired, and whose refresh family (if any) has too;
* deny-list entries (revoked client_credentials tokens) a minute after the token expired:
  a missing entry would make a still-verifying token active again, so the margin covers
  the verifier's 5 s leeway and clock skew between replicas;
* outbox rows delivered or dead for ``outbox_days``, and the development mailbox likewise;
* audit events older than ``audit_days`` (400 by default: a year and a bit of answers to
  "what happened to this account").

Short-lived counters and markers (throttles, one-time marks, seen link events) live in the
ephemeral store with a TTL and need no purge.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from idp.persistence import AuditLog, UnitOfWork

DAY = 24 * 3600
ENDED_SESSION_GRACE = DAY
DENIED_TOKEN_GRACE = 60


class Housekeeping(Protocol):
    """One batch of one kind of record per call (the SQL adapter: ``SqlHousekeeping``)."""

    def verifications(self, now: int, batch: int) -> int: ...

    def codes(self, now: int, batch: int) -> int: ...

    def sessions(self, now: int, ended_before: int, batch: int) -> int: ...

    def grants(self, now: int, batch: int) -> int: ...

    def revoked_tokens(self, before: int, batch: int) -> int: ...

    def outbox(self, before: int, batch: int) -> int: ...

    def dev_mailbox(self, before: int, batch: int) -> int: ...


@dataclass(frozen=True)
class Retention:
    audit_days: int = 400
    outbox_days: int = 7


class HousekeepingService:
    def __init__(
        self,
        store: Housekeeping,
        audit_log: AuditLog,
        uow: UnitOfWork,
        retention: Retention = Retention(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._audit = audit_log
        self._uow = uow
        self._retention = retention
        self._clock = clock

    def purge(self, batch: int = 1000) -> dict[str, int]:
        """Delete everything due, ``batch`` rows per transaction; how many of each kind."""
        if batch < 1:
            raise ValueError("the batch size must be at least 1")
        now = int(self._clock())
        outbox_cutoff = now - self._retention.outbox_days * DAY
        steps: dict[str, Callable[[int], int]] = {
            "verifications": lambda n: self._store.verifications(now, n),
            "codes": lambda n: self._store.codes(now, n),
            "sessions": lambda n: self._store.sessions(now, now - ENDED_SESSION_GRACE, n),
            "grants": lambda n: self._store.grants(now, n),
            "revoked_tokens": lambda n: self._store.revoked_tokens(now - DENIED_TOKEN_GRACE, n),
            "outbox": lambda n: self._store.outbox(outbox_cutoff, n),
            "dev_mailbox": lambda n: self._store.dev_mailbox(outbox_cutoff, n),
            "audit": lambda n: self._audit.purge_before(now - self._retention.audit_days * DAY, n),
        }
        return {name: self._drain(step, batch) for name, step in steps.items()}

    def _drain(self, step: Callable[[int], int], batch: int) -> int:
        total = 0
        while True:
            with self._uow.transaction():
                done = step(batch)
            total += done
            if done < batch:
                return total

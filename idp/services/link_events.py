"""Telling a previous holder that a billing account left them (the seed: "the previous owner
is notified"). The linking service publishes link events from its transactional outbox; this
consumer reads them from a stored cursor, at least once, and de-duplicates by event id.

Each event is one transaction: its audit rows (``billing.*``) written, the notice queued in
the IdP's outbox and the cursor advanced together, so the consumer never waits on a gateway,
and a crash either redoes the event or finds it done. Notices are capped per recipient (a
cap over the limit drops the notice with a log line; it never stops the stream). An event
that fails to be processed is retried ``max_attempts`` times across polls, then set aside (a
``parked_events`` row and an error log line) and the stream moves on. Infrastructure
failures (the database or the store unreachable) are not the event's fault: they propagate,
and the caller retries later without counting them against the event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from idp.adapters.sql.models import ConsumerCursor, ParkedEvent, User
from idp.persistence import UnitOfWork
from idp.ports import StoreUnavailable
from idp.services.audit import AuditService

log = logging.getLogger(__name__)

CONSUMER = "linking-events"
SEEN_TTL = 30 * 24 * 3600
TRANSIENT = (StoreUnavailable, OperationalError, InterfaceError)


@dataclass(frozen=True)
class LinkEvent:
    cursor: int
    event_id: str
    type: str  # "attached" | "detached" | "reattached"
    account_number: str
    subject: str
    previous_subject: str


class LinkEventNotifier:
    def __init__(
        self,
        session: Session,
        store,
        delivery,
        clock: Callable[[], float] = time.time,
        max_attempts: int = 3,
        uow: UnitOfWork | None = None,
        audit: AuditService | None = None,
    ) -> None:
        if uow is None:
            from idp.adapters.sql.uow import SqlUnitOfWork

            uow = SqlUnitOfWork(session)
        self._uow = uow
        if audit is None:
            from idp.adapters.sql.audit import SqlAuditLog

            audit = AuditService(SqlAuditLog(session), uow, clock)
        self._audit = audit
        self._db = session
        self._store = store
        self._delivery = delivery
        self._clock = clock
        self._max_attempts = max_attempts
        self.stalled = False  # the last batch stopped at an event that failed

    def cursor(self) -> int:
        row = self._db.get(ConsumerCursor, CONSUMER)
        return row.cursor if row else 0

    def _advance(self, cursor: int) -> None:
        row = self._db.get(ConsumerCursor, CONSUMER)
        if row is None:
            row = ConsumerCursor(name=CONSUMER, cursor=0, updated_at=0)
            self._db.add(row)
        row.cursor, row.updated_at = max(row.cursor, cursor), int(self._clock())

    def handle(self, events: Iterable[LinkEvent]) -> int:
        """Process events in order; returns how many notices were queued. Stops early (with
        ``stalled`` set) at an event that failed but may still succeed on a later call."""
        queued, self.stalled = 0, False
        for event in events:
            try:
                queued += self._process(event)  # rolled back by its unit of work on failure
            except TRANSIENT:
                raise
            except Exception as exc:  # noqa: BLE001 - any other failure is the event's own
                if not self._set_aside(event, exc):
                    self.stalled = True
                    break
        return queued

    def _process(self, event: LinkEvent) -> int:
        seen = f"link-event:{event.event_id}"
        notify = self._moved(event) and self._store.get(seen) is None
        with self._uow.transaction():  # the audit, the notice and the cursor, together
            self._record(event)
            queued = self._notify(event) if notify else 0
            failed_before = self._db.get(ParkedEvent, (CONSUMER, event.event_id))
            if failed_before is not None:
                self._db.delete(failed_before)  # it went through this time
            self._advance(event.cursor)
        if notify:
            self._store.set(seen, "1", SEEN_TTL)
        return queued

    def _set_aside(self, event: LinkEvent, exc: Exception) -> bool:
        """Count a failure of ``event``; True when it is set aside (and the cursor moved)."""
        error = f"{type(exc).__name__}: {exc}"[:200]
        with self._uow.transaction():
            now = int(self._clock())
            row = self._db.get(ParkedEvent, (CONSUMER, event.event_id))
            if row is None:
                row = ParkedEvent(
                    consumer=CONSUMER,
                    event_id=event.event_id,
                    cursor=event.cursor,
                    event=asdict(event),
                    attempts=0,
                    first_failed_at=now,
                )
                self._db.add(row)
            row.attempts, row.last_error = row.attempts + 1, error
            parked = row.attempts >= self._max_attempts
            if parked:
                row.parked_at = now
                self._advance(event.cursor)
                log.error(
                    "link event %s (cursor %s) set aside after %d attempts: %s",
                    event.event_id,
                    event.cursor,
                    row.attempts,
                    type(exc).__name__,
                )
            else:
                log.warning(
                    "link event %s (cursor %s) failed (attempt %d of %d): %s",
                    event.event_id,
                    event.cursor,
                    row.attempts,
                    self._max_attempts,
                    type(exc).__name__,
                )
        return parked

    def _record(self, event: LinkEvent) -> None:
        """The event in the audit trail of the account(s) it concerns."""
        details = {"account_number": event.account_number, "event_id": event.event_id}
        kind = {"attached": "attach", "detached": "detach", "reattached": "reattach"}.get(
            event.type
        )
        if kind is None:  # a newer contract's event: nothing of ours to record
            log.warning("link event %s of unknown type %r", event.event_id, event.type[:32])
            return
        if event.subject:
            self._audit.record(f"billing.{kind}", subject=event.subject, details=details)
        if kind == "reattach" and event.previous_subject:
            self._audit.record("billing.taken", subject=event.previous_subject, details=details)

    @staticmethod
    def _moved(event: LinkEvent) -> bool:
        return event.type == "reattached" and bool(event.previous_subject)

    def _notify(self, event: LinkEvent) -> int:
        user = self._db.get(User, event.previous_subject)
        if user is None:
            return 0
        if user.email and user.email_verified:
            kind, value = "email", user.email
        elif user.phone and user.phone_verified:
            kind, value = "phone", user.phone
        else:
            return 0
        queued = self._delivery.notify_system(
            kind,
            value,
            "account_moved",
            about=event.account_number,
            number=event.account_number,
        )
        return 1 if queued else 0

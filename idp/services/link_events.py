"""Telling a previous holder that a billing account left them (the seed: "the previous owner
is notified"). The linking service publishes link events from its transactional outbox; this
consumer reads them from a stored cursor, at least once, and de-duplicates by event id."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from idp.adapters.sql.models import ConsumerCursor, User

log = logging.getLogger(__name__)

CONSUMER = "linking-events"
SEEN_TTL = 30 * 24 * 3600


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
        self, session: Session, store, delivery, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = session
        self._store = store
        self._delivery = delivery
        self._clock = clock

    def cursor(self) -> int:
        row = self._db.get(ConsumerCursor, CONSUMER)
        return row.cursor if row else 0

    def _advance(self, cursor: int) -> None:
        row = self._db.get(ConsumerCursor, CONSUMER)
        if row is None:
            row = ConsumerCursor(name=CONSUMER, cursor=0, updated_at=0)
            self._db.add(row)
        row.cursor, row.updated_at = max(row.cursor, cursor), int(self._clock())
        self._db.commit()

    def handle(self, events: Iterable[LinkEvent]) -> int:
        """Notify for each re-attachment once; returns how many notices were sent."""
        sent = 0
        for event in events:
            # Seen-marks are set only after delivery, so a crash re-sends (at least once) and
            # a replayed event does not (de-duplicated by event id).
            seen = f"link-event:{event.event_id}"
            if self._moved(event) and self._store.get(seen) is None:
                sent += self._notify(event)
                self._store.set(seen, "1", SEEN_TTL)
            self._advance(event.cursor)
        return sent

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
        self._delivery.notify_contact(
            kind,
            value,
            "account_moved",
            address="linking-service",
            about=event.account_number,
            number=event.account_number,
        )
        return 1

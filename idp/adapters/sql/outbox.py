"""The transactional outbox (``outbox_entries``): written by the services, drained by
``idp worker``.

* :class:`SqlOutbox` adds a row to the caller's session — the same transaction as the change
  it announces, committed by the caller. After that commit the worker is woken (a
  ``Session`` ``after_commit`` hook); a rollback discards the rows and runs the undo steps
  registered with it (e.g. forgetting a "notice sent" mark).
* :class:`OutboxQueue` is the worker's side: claim due rows under a lease, mark them sent,
  reschedule or bury them. Claims are ``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL and
  a conditional ``UPDATE`` per row on SQLite (whose single writer serialises the claims), so
  replicas never deliver one row at the same time, and a row marked sent is never claimed
  again.
* :class:`RecordingOutbox`: the twin for unit tests, keeping what was enqueued in a list.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session, scoped_session

from idp.adapters.sql.models import OutboxEntry
from idp.ports import Waker

AnySession = Session | scoped_session
LANES = {"sms": "messages", "email": "messages", "logout": "logout"}
_WAKE, _UNDO = "idp.outbox.wake", "idp.outbox.undo"


class SqlOutbox:
    def __init__(
        self,
        session: AnySession,
        waker: Waker | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._session = session
        self._waker = waker
        self._clock = clock

    @property
    def waker(self) -> Waker | None:
        return self._waker

    def add(
        self, kind: str, purpose: str, payload: dict[str, Any], *, ttl: int, ref: str | None = None
    ) -> str:
        """Queue one side effect in the current transaction; its message id."""
        if kind not in LANES:
            raise ValueError(f"unknown outbox kind {kind!r}")
        now = self._clock()
        message_id = str(uuid.uuid4())
        self._session.add(
            OutboxEntry(
                message_id=message_id,
                kind=kind,
                purpose=purpose,
                ref=ref,
                payload=payload,
                state="pending",
                attempts=0,
                due_at_ms=int(now * 1000),
                created_at=int(now),
                expires_at=int(now) + ttl,
            )
        )
        if self._waker is not None:
            self._session.info.setdefault(_WAKE, set()).add((self._waker, LANES[kind]))
        return message_id

    def on_rollback(self, undo: Callable[[], None]) -> None:
        """Run ``undo`` if the current transaction rolls back instead of committing."""
        self._session.info.setdefault(_UNDO, []).append(undo)


@event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    session.info.pop(_UNDO, None)
    for waker, lane in session.info.pop(_WAKE, ()):
        waker.wake(lane)  # the wakers log their own failures and never raise


@event.listens_for(Session, "after_rollback")
def _undo_after_rollback(session: Session) -> None:
    session.info.pop(_WAKE, None)
    for undo in session.info.pop(_UNDO, ()):
        undo()


# What a finished row keeps: where it went, never what it said (codes and links are secrets
# only until delivered or dead, and then they are nobody's business).
_CONTENT = ("text", "subject", "html")


def _spent(payload: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in payload.items() if key not in _CONTENT}


@dataclass(frozen=True)
class Claimed:
    """A row claimed for delivery: a snapshot, so the send runs outside any transaction."""

    id: int
    message_id: str
    kind: str
    purpose: str
    payload: dict[str, Any]
    attempts: int
    expires_at: int
    claim: str


class OutboxQueue:
    def __init__(self, session: AnySession, clock: Callable[[], float] = time.time) -> None:
        self._db = session
        self._clock = clock

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def claim(self, kinds: tuple[str, ...], limit: int, lease: float) -> list[Claimed]:
        """Claim up to ``limit`` due rows for ``lease`` seconds (one short transaction)."""
        now_ms, token = self._now_ms(), secrets.token_hex(8)
        due = (
            sa.select(OutboxEntry.id)
            .where(
                OutboxEntry.state == "pending",
                OutboxEntry.due_at_ms <= now_ms,
                OutboxEntry.kind.in_(kinds),
            )
            .order_by(OutboxEntry.due_at_ms)
            .limit(limit)
        )
        claim = sa.update(OutboxEntry).values(
            claim=token, due_at_ms=now_ms + int(lease * 1000), attempts=OutboxEntry.attempts + 1
        )
        try:
            if self._db.get_bind().dialect.name == "postgresql":
                ids = list(self._db.scalars(due.with_for_update(skip_locked=True)))
                if ids:
                    self._db.execute(claim.where(OutboxEntry.id.in_(ids)))
            else:
                for row_id in list(self._db.scalars(due)):
                    # Another worker may have claimed it since the read: the WHERE decides.
                    self._db.execute(
                        claim.where(
                            OutboxEntry.id == row_id,
                            OutboxEntry.state == "pending",
                            OutboxEntry.due_at_ms <= now_ms,
                        )
                    )
            rows = list(
                self._db.execute(
                    sa.select(
                        OutboxEntry.id,
                        OutboxEntry.message_id,
                        OutboxEntry.kind,
                        OutboxEntry.purpose,
                        OutboxEntry.payload,
                        OutboxEntry.attempts,
                        OutboxEntry.expires_at,
                    )
                    .where(OutboxEntry.claim == token)
                    .order_by(OutboxEntry.due_at_ms, OutboxEntry.id)
                )
            )
            self._db.commit()
        except BaseException:
            self._db.rollback()
            raise
        return [Claimed(*row, claim=token) for row in rows]

    def _finish(self, row: Claimed, **values: Any) -> bool:
        try:
            done = self._db.execute(
                sa.update(OutboxEntry)
                .where(
                    OutboxEntry.id == row.id,
                    OutboxEntry.claim == row.claim,
                    OutboxEntry.state == "pending",
                )
                .values(claim=None, **values)
            ).rowcount
            self._db.commit()
        except BaseException:
            self._db.rollback()
            raise
        return done == 1

    def mark_sent(self, row: Claimed) -> bool:
        """False when the lease was lost meanwhile (another worker owns the row now)."""
        return self._finish(
            row,
            state="sent",
            sent_at=int(self._clock()),
            last_error=None,
            payload=_spent(row.payload),
        )

    def retry(self, row: Claimed, delay: float, error: str) -> bool:
        return self._finish(
            row, due_at_ms=self._now_ms() + int(delay * 1000), last_error=error[:200]
        )

    def bury(self, row: Claimed, error: str) -> bool:
        return self._finish(row, state="dead", last_error=error[:200], payload=_spent(row.payload))

    def backlog(self, kinds: tuple[str, ...]) -> tuple[int, int | None]:
        """Pending rows of ``kinds`` and the creation time (epoch seconds) of the oldest."""
        count, oldest = self._db.execute(
            sa.select(sa.func.count(), sa.func.min(OutboxEntry.created_at)).where(
                OutboxEntry.state == "pending", OutboxEntry.kind.in_(kinds)
            )
        ).one()
        self._db.rollback()  # end the read transaction, as next_due_in does
        return int(count), oldest

    def next_due_in(self, kinds: tuple[str, ...]) -> float | None:
        """Seconds until the earliest pending row of ``kinds`` is due; None when none."""
        due = self._db.scalar(
            sa.select(sa.func.min(OutboxEntry.due_at_ms)).where(
                OutboxEntry.state == "pending", OutboxEntry.kind.in_(kinds)
            )
        )
        self._db.rollback()  # end the read transaction: SQLite would keep its snapshot
        return None if due is None else max(0.0, (due - self._now_ms()) / 1000)


@dataclass
class Enqueued:
    kind: str
    purpose: str
    payload: dict[str, Any]
    ttl: int
    ref: str | None
    message_id: str


@dataclass
class RecordingOutbox:
    """The twin of :class:`SqlOutbox`: what was enqueued, in order (rollbacks not modelled)."""

    entries: list[Enqueued] = field(default_factory=list)

    def add(
        self, kind: str, purpose: str, payload: dict[str, Any], *, ttl: int, ref: str | None = None
    ) -> str:
        if kind not in LANES:
            raise ValueError(f"unknown outbox kind {kind!r}")
        message_id = str(uuid.uuid4())
        self.entries.append(Enqueued(kind, purpose, dict(payload), ttl, ref, message_id))
        return message_id

    def on_rollback(self, undo: Callable[[], None]) -> None:
        return None

    def of(self, kind: str) -> list[Enqueued]:
        return [e for e in self.entries if e.kind == kind]

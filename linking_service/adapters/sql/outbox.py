"""The transactional outbox of link events, written so that cursors are visible in order.

A cursor comes from a sequence when the row is inserted, but transactions commit in their own
order: on PostgreSQL, a writer holding cursor 5 could commit after another committed cursor 6,
and a consumer that had already resumed past 6 would never see 5. So every transaction that
changes a holder takes one transaction-scoped advisory lock before it locks any link row and
before its event gets a cursor, and keeps it until it commits: cursors are handed out and
made visible strictly one transaction after another, and "everything after the last cursor I
saw" never skips an event. SQLite needs no lock: its writers already run one at a time
(``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from linking_service.adapters.sql.models import LinkEventRow

#: The advisory lock's key: "LINKOUTB" as an integer, unlikely to collide with another's.
OUTBOX_LOCK = 0x4C494E4B4F555442


def lock_outbox(db: Session) -> None:
    """Serialize with every other writer of link changes until this transaction ends.

    Taken before any link row is locked, so that no two writers can wait for each other.
    """
    if db.get_bind().dialect.name == "postgresql":
        db.execute(select(func.pg_advisory_xact_lock(OUTBOX_LOCK)))


def append_event(db: Session, row: LinkEventRow) -> None:
    """Write ``row`` to the outbox in ``db``'s transaction (taking the lock if not yet held)."""
    lock_outbox(db)
    db.add(row)
    db.flush()

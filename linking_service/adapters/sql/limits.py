"""Attempt counters in the service's database, changed atomically (one statement each).

``INSERT … ON CONFLICT DO UPDATE … RETURNING`` works the same on PostgreSQL and SQLite, so
parallel attempts can never read a stale count (checklist items 31, 41). An attempt is
*reserved* — counted before the work it limits, in the caller's transaction — and refused when
the count would pass the limit; so no number of parallel calls gets more attempts than the
limit. The counter row stays locked until that transaction ends.
"""

from __future__ import annotations

from sqlalchemy import case, delete, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from linking_service.adapters.sql.models import AttemptRow
from linking_service.domain import TooManyAttempts


def reserve(db: Session, key: str, maximum: int, window: int, now: int) -> None:
    """Count one attempt of ``key`` in its current window, or raise ``TooManyAttempts`` (the
    caller's transaction is then rolled back, and the attempt with it)."""
    insert = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    live = AttemptRow.window_ends_at > now
    stmt = (
        insert(AttemptRow)
        .values(key=key, count=1, window_ends_at=now + window)
        .on_conflict_do_update(
            index_elements=[AttemptRow.key],
            set_={
                "count": case((live, AttemptRow.count + 1), else_=1),
                "window_ends_at": case((live, AttemptRow.window_ends_at), else_=now + window),
            },
        )
        .returning(AttemptRow.count, AttemptRow.window_ends_at)
    )
    count, ends_at = db.execute(stmt).one()
    if count > maximum:
        raise TooManyAttempts(max(1, ends_at - now))


def refund(db: Session, key: str) -> None:
    """Give back one reserved attempt (the attempt did not fail)."""
    db.execute(
        update(AttemptRow)
        .where(AttemptRow.key == key, AttemptRow.count > 0)
        .values(count=AttemptRow.count - 1)
    )


def reset(db: Session, key: str) -> None:
    db.execute(delete(AttemptRow).where(AttemptRow.key == key))

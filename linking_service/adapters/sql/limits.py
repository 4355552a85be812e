"""Failure counters in the service's database, incremented atomically (one statement).

``INSERT … ON CONFLICT DO UPDATE … RETURNING`` works the same on PostgreSQL and SQLite, so
parallel attempts can never read a stale count (checklist items 31, 41).
"""

from __future__ import annotations

from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from linking_service.adapters.sql.db import transaction
from linking_service.adapters.sql.models import AttemptRow


class SqlAttemptCounter:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions
        dialect = sessions.kw["bind"].dialect.name
        self._insert = postgresql.insert if dialect == "postgresql" else sqlite.insert

    def hit(self, key: str, window: int, now: int) -> int:
        """Count one failure in the current window of ``key``; the new count."""
        stmt = self._insert(AttemptRow).values(key=key, count=1, window_ends_at=now + window)
        live = AttemptRow.window_ends_at > now
        stmt = stmt.on_conflict_do_update(
            index_elements=[AttemptRow.key],
            set_={
                "count": case((live, AttemptRow.count + 1), else_=1),
                "window_ends_at": case((live, AttemptRow.window_ends_at), else_=now + window),
            },
        ).returning(AttemptRow.count)
        with transaction(self._sessions) as db:
            return int(db.execute(stmt).scalar_one())

    def count(self, key: str, now: int) -> tuple[int, int]:
        """(failures in the current window, seconds until it ends)."""
        with transaction(self._sessions) as db:
            row = db.scalar(select(AttemptRow).where(AttemptRow.key == key))
            if row is None or row.window_ends_at <= now:
                return 0, 0
            return row.count, row.window_ends_at - now

    def reset(self, key: str) -> None:
        with transaction(self._sessions) as db:
            db.execute(delete(AttemptRow).where(AttemptRow.key == key))

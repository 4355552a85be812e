"""``linking-service purge``: expired attachment flows, idempotency records past their
retention and attempt counters past their window, deleted in batches.

Each batch is one statement in its own transaction, ``DELETE … WHERE key IN (SELECT key …
ORDER BY key LIMIT n)``, with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL: two purges at once
take different rows instead of waiting on each other (SQLite runs them one after the other).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from linking_service.adapters.sql.db import unit_of_work
from linking_service.adapters.sql.models import AttemptRow, FlowRow, IdempotencyRow

#: An expired flow is kept this long, so a late caller still hears FLOW_EXPIRED.
FLOW_GRACE = 24 * 3600
#: A retry with the same request id repeats the first answer within this time.
IDEMPOTENCY_RETENTION = 24 * 3600


def _delete_batch(db: Session, model, keys, condition, batch: int) -> int:
    chosen = select(*keys).where(condition).order_by(*keys).limit(batch)
    if db.get_bind().dialect.name == "postgresql":
        chosen = chosen.with_for_update(skip_locked=True)
    target = keys[0] if len(keys) == 1 else tuple_(*keys)
    return db.execute(delete(model).where(target.in_(chosen))).rowcount or 0


class Housekeeping:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Callable[[], float] = time.time,
        idempotency_retention: int = IDEMPOTENCY_RETENTION,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._retention = idempotency_retention

    def purge(self, batch: int = 1000) -> dict[str, int]:
        """Delete everything due, ``batch`` rows per transaction; how many of each kind."""
        if batch < 1:
            raise ValueError("the batch size must be at least 1")
        now = int(self._clock())
        kinds = {
            "flows": (FlowRow, (FlowRow.id,), FlowRow.expires_at < now - FLOW_GRACE),
            "idempotency": (
                IdempotencyRow,
                (IdempotencyRow.subject, IdempotencyRow.request_id),
                IdempotencyRow.created_at < now - self._retention,
            ),
            "attempt_counters": (AttemptRow, (AttemptRow.key,), AttemptRow.window_ends_at < now),
        }
        done = {}
        for name, (model, keys, condition) in kinds.items():
            total = 0
            while True:
                with unit_of_work(self._sessions) as db:
                    deleted = _delete_batch(db, model, keys, condition, batch)
                total += deleted
                if deleted < batch:
                    break
            done[name] = total
        return done

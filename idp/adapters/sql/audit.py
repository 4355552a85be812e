"""The SQL adapter of :class:`idp.persistence.AuditLog` (table ``audit_events``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, scoped_session

from idp.adapters.sql.housekeeping import delete_batch
from idp.adapters.sql.models import AuditEntry
from idp.domain.audit import AuditEvent


def _event(row: AuditEntry) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        at=row.at,
        event_type=row.event_type,
        subject=row.subject,
        operator=row.operator,
        address=row.address,
        user_agent=row.user_agent,
        details=dict(row.details or {}),
    )


class SqlAuditLog:
    def __init__(self, session: Session | scoped_session) -> None:
        self._db = session

    def add(self, event: AuditEvent) -> None:
        self._db.add(
            AuditEntry(
                at=event.at,
                event_type=event.event_type,
                subject=event.subject,
                operator=event.operator,
                address=event.address,
                user_agent=event.user_agent,
                details=event.details,
            )
        )

    def recent(self, subject: str, limit: int) -> list[AuditEvent]:
        rows = self._db.scalars(
            select(AuditEntry)
            .where(AuditEntry.subject == subject)
            .order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
            .limit(limit)
        )
        return [_event(row) for row in rows]

    def between(
        self,
        since: int,
        until: int | None = None,
        subject: str | None = None,
        after: int = 0,
        limit: int = 1000,
    ) -> list[AuditEvent]:
        query = select(AuditEntry).where(AuditEntry.at >= since, AuditEntry.id > after)
        if until is not None:
            query = query.where(AuditEntry.at < until)
        if subject is not None:
            query = query.where(AuditEntry.subject == subject)
        rows = self._db.scalars(query.order_by(AuditEntry.id).limit(limit))
        return [_event(row) for row in rows]

    def purge_before(self, cutoff: int, batch: int) -> int:
        return delete_batch(self._db, AuditEntry, AuditEntry.id, AuditEntry.at < cutoff, batch)

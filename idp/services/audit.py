"""The security audit trail (:mod:`idp.domain.audit`): recording and reading events.

**Recording from a use case** — one call, inside the use case's unit of work, so the event
commits or rolls back with the change it records::

    with uow.transaction():
        ...                                   # the change (e.g. a social profile linked)
        audit.record("social.link", subject=user.id, details={"provider": "vk"})

``record`` joins the enclosing transaction (or opens its own when called outside one, as a
failed sign-in does). The address and user agent come from the request-context provider set
by the composition root (the current HTTP request; nothing on the command line) unless given.
``operator`` names the support-desk person for ``support.*`` events. ``details`` are small
scalars and never a secret: a key naming one (``password``, ``code``, ``token``…) and an
unknown event type are refused with :class:`~idp.domain.errors.ValidationError`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from idp.domain.audit import (
    AuditEvent,
    RequestContext,
    check_details,
    check_event_type,
    no_request,
)
from idp.persistence import AuditLog, UnitOfWork

#: How many events «Персональная информация» shows.
RECENT_LIMIT = 20


class AuditService:
    def __init__(
        self,
        log: AuditLog,
        uow: UnitOfWork,
        clock: Callable[[], float] = time.time,
        context: Callable[[], RequestContext] = no_request,
    ) -> None:
        self._log = log
        self._uow = uow
        self._clock = clock
        self._context = context

    @classmethod
    def in_memory(cls, clock: Callable[[], float] = time.time) -> AuditService:
        """A recorder on the memory twin, for services built without the composition root."""
        from idp.adapters.persistence_memory import MemoryAuditLog, MemoryUnitOfWork

        log = MemoryAuditLog()
        return cls(log, MemoryUnitOfWork(log), clock)

    def record(
        self,
        event_type: str,
        *,
        subject: str | None = None,
        operator: str | None = None,
        details: dict[str, Any] | None = None,
        address: str | None = None,
        user_agent: str | None = None,
    ) -> AuditEvent:
        context = self._context()
        event = AuditEvent(
            event_type=check_event_type(event_type),
            at=int(self._clock()),
            subject=subject,
            operator=(operator or "")[:100] or None,
            address=(address or context.address or "")[:64] or None,
            user_agent=(user_agent or context.user_agent or "")[:300] or None,
            details=check_details(details),
        )
        with self._uow.transaction():
            self._log.add(event)
        return event

    def recent(self, subject: str, limit: int = RECENT_LIMIT) -> list[AuditEvent]:
        """The subject's latest events, newest first (the person's own page)."""
        try:
            return self._log.recent(subject, limit)
        finally:
            self._uow.end_read()

    def export(
        self, since: int, until: int | None = None, subject: str | None = None, page: int = 1000
    ) -> Iterator[AuditEvent]:
        """Events from ``since`` (inclusive) to ``until`` (exclusive) in the order they were
        written, read ``page`` at a time (a year of events never sits in memory at once)."""
        after = 0
        while True:
            try:
                rows = self._log.between(since, until, subject, after=after, limit=page)
            finally:
                self._uow.end_read()
            yield from rows
            if len(rows) < page:
                return
            after = rows[-1].id

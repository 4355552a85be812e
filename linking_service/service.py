"""Use cases of the linking service besides the attachment flow (:mod:`.attachment`): reads,
detaching, automatic attachment, the event outbox. No grpc, no generated code.

Every change of holder happens in one database transaction that also writes the outbox event,
so no event is lost or invented; events become visible in cursor order
(:mod:`linking_service.adapters.sql.outbox`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from linking_service.adapters.sql.db import read_engine, read_only_sessions, transaction
from linking_service.adapters.sql.models import LinkEventRow, LinkRow
from linking_service.adapters.sql.outbox import append_event, lock_outbox
from linking_service.config import LinkingSettings
from linking_service.domain import (
    AttachedAccount,
    EventType,
    InvalidArgument,
    LinkEvent,
    NotFound,
    check_account_number,
    phone_number,
)
from linking_service.ports import BillingDirectory
from linking_service.regions import check_region

_LINKS = LinkRow.__table__
# The hot reads, built once: Core statements on a pooled connection, no ORM session per call.
_ACCOUNTS_OF = (
    select(_LINKS.c.account_number, _LINKS.c.attached_at)
    .where(_LINKS.c.subject == bindparam("subject"))
    .order_by(_LINKS.c.account_number)
)
_OWNER_OF = select(_LINKS.c.subject, _LINKS.c.attached_at).where(
    _LINKS.c.account_number == bindparam("number")
)


class LinkingService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        directory: BillingDirectory,
        settings: LinkingSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        # Reads that never wait for a writer's lock (SQLite: BEGIN DEFERRED under WAL).
        self._reads = read_only_sessions(sessions)
        # Single-statement reads: autocommit on PostgreSQL (see read_engine).
        self._read = read_engine(sessions)
        self._directory = directory
        self._settings = settings
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    # --- reading ------------------------------------------------------------------------------

    def _attached(self, links: Sequence[tuple[str, int | None]]) -> list[AttachedAccount]:
        """``(account number, attached_at)`` pairs with the directory's data: one lookup."""
        accounts = self._directory.find_accounts([number for number, _ in links]) if links else {}
        result = []
        for number, attached_at in links:
            account = accounts.get(number)
            result.append(
                AttachedAccount(
                    number=number,
                    region=account.region if account else "",
                    attached_at=attached_at,
                    services=tuple(dict.fromkeys(s.kind for s in account.services))
                    if account
                    else (),
                )
            )
        return result

    def accounts_of(self, subject: str) -> list[AttachedAccount]:
        with self._read.connect() as connection:
            links = connection.execute(_ACCOUNTS_OF, {"subject": subject}).all()
        return self._attached(links)

    def owner_of(self, account_number: str) -> tuple[str | None, int | None]:
        check_account_number(account_number)
        with self._read.connect() as connection:
            row = connection.execute(_OWNER_OF, {"number": account_number}).first()
        if row is None or row.subject is None:
            return None, None
        return row.subject, row.attached_at

    def events_after(self, cursor: int, limit: int = 500) -> list[LinkEvent]:
        """Events after ``cursor`` in cursor order; what a reader sees is always a prefix of
        the outbox (:mod:`linking_service.adapters.sql.outbox`)."""
        with transaction(self._reads) as db:
            rows = db.scalars(
                select(LinkEventRow)
                .where(LinkEventRow.cursor > cursor)
                .order_by(LinkEventRow.cursor)
                .limit(limit)
            )
            return [
                LinkEvent(
                    r.cursor,
                    r.event_id,
                    EventType(r.type),
                    r.account_number,
                    r.subject,
                    r.previous_subject,
                    r.occurred_at,
                )
                for r in rows
            ]

    # --- detaching and automatic attachment -----------------------------------------------

    def detach(self, subject: str, account_number: str) -> None:
        check_account_number(account_number)
        now = self._now()
        with transaction(self._sessions) as db:
            lock_outbox(db)  # before the link row: see linking_service.adapters.sql.outbox
            done = db.execute(
                update(LinkRow)
                .where(LinkRow.account_number == account_number, LinkRow.subject == subject)
                .values(subject=None, version=LinkRow.version + 1, attached_at=None)
            ).rowcount
            if done != 1:
                raise NotFound("the account is not attached to you", "ACCOUNT_NOT_ATTACHED")
            append_event(
                db, LinkEventRow.new(EventType.DETACHED, account_number, None, subject, now)
            )

    def auto_attach(
        self,
        subject: str,
        family_name: str,
        given_name: str,
        middle_name: str | None,
        region: str,
        phones: Sequence[str],
        emails: Sequence[str],
    ) -> list[AttachedAccount]:
        """Attach every matching account that nobody holds (registration, step 3)."""
        region = check_region(region)
        if not subject or len(subject) > 255:
            raise InvalidArgument("a subject is required")
        phones = [phone_number(p) for p in phones]
        emails = [e.strip().lower() for e in emails if e.strip()]
        matches = self._directory.matching_owner(
            region, family_name, given_name, middle_name, phones, emails
        )
        attached = []
        now = self._now()
        for account in matches:
            try:
                with transaction(self._sessions) as db:
                    lock_outbox(db)
                    link = db.get(LinkRow, account.number, with_for_update=True)
                    if link is not None and link.subject is not None:
                        continue
                    if link is None:
                        db.add(
                            LinkRow(
                                account_number=account.number,
                                subject=subject,
                                version=1,
                                attached_at=now,
                            )
                        )
                    else:
                        link.subject, link.attached_at = subject, now
                        link.version += 1
                    append_event(
                        db, LinkEventRow.new(EventType.ATTACHED, account.number, subject, None, now)
                    )
            except IntegrityError:
                continue
            attached.append(
                AttachedAccount(
                    account.number,
                    account.region,
                    now,
                    tuple(dict.fromkeys(s.kind for s in account.services)),
                )
            )
        return attached

"""Twins of :class:`~idp.ports.SmsSender` and :class:`~idp.ports.EmailSender`.

* ``Outbox*Sender``: development. Each message becomes an ``outbox_messages`` row, which the
  development page ``/dev/outbox`` lists, so a person can register without a gateway. Codes
  and links sit there in clear text: the composition root must never choose these in
  production.
* ``Recording*Sender``: unit tests. Messages are kept in a list on the object.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, scoped_session

from idp.adapters.sql.models import OutboxMessage
from idp.adapters.sql.uow import SqlUnitOfWork
from idp.ports import DeliveryFailed

AnySession = Session | scoped_session


class _Outbox:
    def __init__(self, session: AnySession, clock: Callable[[], float] = time.time) -> None:
        self._session = session
        self._clock = clock

    def _write(self, channel: str, recipient: str, body: str, subject=None, html=None) -> None:
        # Written on the caller's session (a second connection would wait on SQLite's write
        # lock held by the caller), in the caller's unit of work: it commits with the change
        # it announces, or not at all. Outside one, the write is a unit of work of its own.
        try:
            with SqlUnitOfWork(self._session).transaction():
                self._session.add(
                    OutboxMessage(
                        channel=channel,
                        recipient=recipient,
                        subject=subject[:200] if subject is not None else None,
                        body=body,
                        html=html,
                        created_at=int(self._clock()),
                    )
                )
                self._session.flush()
        except SQLAlchemyError as exc:
            raise DeliveryFailed(f"outbox write failed: {type(exc).__name__}") from exc


class OutboxSmsSender(_Outbox):
    def send(self, phone: str, text: str, message_id: str | None = None) -> None:
        self._write("sms", phone, text)


class OutboxEmailSender(_Outbox):
    def send(
        self,
        to: str,
        subject: str,
        text: str,
        html: str | None = None,
        message_id: str | None = None,
    ) -> None:
        self._write("email", to, text, subject=subject, html=html)


def latest_messages(
    session: AnySession, recipient: str | None = None, limit: int = 50
) -> list[OutboxMessage]:
    """The newest outbox messages first, optionally for one recipient only."""
    query = sa.select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if recipient is not None:
        query = query.where(OutboxMessage.recipient == recipient)
    return list(session.scalars(query))


@dataclass(frozen=True)
class SentSms:
    phone: str
    text: str
    message_id: str | None = None


@dataclass(frozen=True)
class SentEmail:
    to: str
    subject: str
    text: str
    html: str | None
    message_id: str | None = None


class RecordingSmsSender:
    """Records each SMS; ``failing=True`` makes every send raise DeliveryFailed instead."""

    def __init__(self, failing: bool = False) -> None:
        self.sent: list[SentSms] = []
        self.failing = failing

    def send(self, phone: str, text: str, message_id: str | None = None) -> None:
        if self.failing:
            raise DeliveryFailed("recording SMS sender set to fail")
        self.sent.append(SentSms(phone, text, message_id))


class RecordingEmailSender:
    """Records each e-mail; ``failing=True`` makes every send raise DeliveryFailed instead."""

    def __init__(self, failing: bool = False) -> None:
        self.sent: list[SentEmail] = []
        self.failing = failing

    def send(
        self,
        to: str,
        subject: str,
        text: str,
        html: str | None = None,
        message_id: str | None = None,
    ) -> None:
        if self.failing:
            raise DeliveryFailed("recording e-mail sender set to fail")
        self.sent.append(SentEmail(to, subject, text, html, message_id))

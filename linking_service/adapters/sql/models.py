"""Relational schema of the linking service (its own database).

Billing directory tables mirror the company's billing systems (loaded by
``linking-service billing import``); the rest is the service's own state: who holds which
account (one row per account: at most one owner at any moment), the transactional outbox of
link events, attachment flows, idempotency records and attempt counters.
"""

from __future__ import annotations

import uuid

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of the linking service."""


class BillingAccountRow(Base):
    __tablename__ = "billing_accounts"

    number: Mapped[str] = mapped_column(String(12), primary_key=True)
    region: Mapped[str] = mapped_column(String(100), index=True)
    family_name: Mapped[str] = mapped_column(String(100))
    given_name: Mapped[str] = mapped_column(String(100))
    middle_name: Mapped[str | None] = mapped_column(String(100))
    phones: Mapped[list[str]] = mapped_column(JSON, default=list)
    emails: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(16), default="active")


class BillingServiceRow(Base):
    __tablename__ = "billing_services"
    __table_args__ = (Index("ix_billing_services_phone", "phone"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_number: Mapped[str] = mapped_column(
        ForeignKey("billing_accounts.number", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # "internet" | "phone"
    login: Mapped[str | None] = mapped_column(String(64), unique=True)
    phone: Mapped[str | None] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(255))


class LinkRow(Base):
    """The current holder of a billing account; ``version`` guards every move."""

    __tablename__ = "links"

    account_number: Mapped[str] = mapped_column(String(12), primary_key=True)
    subject: Mapped[str | None] = mapped_column(String(255), index=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    attached_at: Mapped[int | None] = mapped_column(BigInteger)


class LinkEventRow(Base):
    """Transactional outbox: written in the same transaction as the link change."""

    __tablename__ = "link_events"

    cursor: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    type: Mapped[str] = mapped_column(String(16))
    account_number: Mapped[str] = mapped_column(String(12))
    subject: Mapped[str | None] = mapped_column(String(255))
    previous_subject: Mapped[str | None] = mapped_column(String(255))
    occurred_at: Mapped[int] = mapped_column(BigInteger)

    @classmethod
    def new(
        cls, kind: str, number: str, subject: str | None, previous: str | None, now: int
    ) -> LinkEventRow:
        return cls(
            event_id=str(uuid.uuid4()),
            type=kind,
            account_number=number,
            subject=subject,
            previous_subject=previous,
            occurred_at=now,
        )


class FlowRow(Base):
    __tablename__ = "attachment_flows"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255), index=True)
    state: Mapped[str] = mapped_column(String(16))
    region: Mapped[str] = mapped_column(String(100))
    lookup_kind: Mapped[str] = mapped_column(String(16))
    lookup_value: Mapped[str] = mapped_column(String(64))
    service_type: Mapped[str | None] = mapped_column(String(16))
    # Accounts the lookup found, with the link version seen then: {number: version}. A move
    # succeeds only if the version is unchanged when the proof is accepted.
    candidates: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    account_number: Mapped[str | None] = mapped_column(String(12))
    refusal_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)


class IdempotencyRow(Base):
    __tablename__ = "idempotency"

    subject: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    method: Mapped[str] = mapped_column(String(64))
    payload_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[int] = mapped_column(BigInteger)


class AttemptRow(Base):
    """A failure counter over a fixed window, incremented atomically."""

    __tablename__ = "attempt_counters"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    window_ends_at: Mapped[int] = mapped_column(BigInteger)

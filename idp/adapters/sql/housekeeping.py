"""Batched deletes for ``idp purge``: rows past their use, removed a batch at a time.

Each batch is one statement, ``DELETE FROM t WHERE key IN (SELECT key FROM t WHERE … ORDER
BY key LIMIT n)``, run in its own short transaction by the caller. On PostgreSQL the inner
``SELECT`` takes ``FOR UPDATE SKIP LOCKED``: two purges running at once (a CronJob on two
replicas) take different rows instead of waiting on each other; on SQLite the single writer
runs them one after the other. A row deleted by the other purge is simply not counted.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, scoped_session

from idp.adapters.sql.models import (
    AuthorizationCode,
    Grant,
    OutboxEntry,
    OutboxMessage,
    RevokedToken,
    SessionClient,
    SsoSession,
    Verification,
)

AnySession = Session | scoped_session


def _batch(session: AnySession, key, condition, batch: int):
    query = select(key).where(condition).order_by(key).limit(batch)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return query.scalar_subquery()


def delete_batch(session: AnySession, model, key, condition, batch: int) -> int:
    """Delete at most ``batch`` rows of ``model`` matching ``condition``; how many went."""
    chosen = _batch(session, key, condition, batch)
    return session.execute(delete(model).where(key.in_(chosen))).rowcount or 0


class SqlHousekeeping:
    """One method per kind of record; each deletes one batch in the caller's transaction."""

    def __init__(self, session: AnySession) -> None:
        self._db = session

    def verifications(self, now: int, batch: int) -> int:
        """Registration, recovery and contact-change flows past their expiry."""
        return delete_batch(
            self._db, Verification, Verification.id, Verification.expires_at < now, batch
        )

    def codes(self, now: int, batch: int) -> int:
        """Authorization codes past their expiry (used or not)."""
        return delete_batch(
            self._db,
            AuthorizationCode,
            AuthorizationCode.id,
            AuthorizationCode.expires_at < now,
            batch,
        )

    def sessions(self, now: int, ended_before: int, batch: int) -> int:
        """Sessions past their expiry, or ended before ``ended_before``, with their
        client lists (the foreign key cascades on PostgreSQL; SQLite does not enforce it)."""
        done = (SsoSession.expires_at < now) | (SsoSession.revoked_at < ended_before)
        self._db.execute(
            delete(SessionClient).where(
                SessionClient.session_id.in_(_batch(self._db, SsoSession.id, done, batch))
            )
        )
        return delete_batch(self._db, SsoSession, SsoSession.id, done, batch)

    def grants(self, now: int, batch: int) -> int:
        """Expired access tokens, with their refresh token once its family has expired: a
        rotated refresh token is kept while its family lives, so a replay is still recognised
        and revokes the family."""
        done = (Grant.access_expires_at < now) & (
            Grant.refresh_hash.is_(None) | (Grant.family_expires_at < now)
        )
        return delete_batch(self._db, Grant, Grant.id, done, batch)

    def revoked_tokens(self, before: int, batch: int) -> int:
        """Deny-list entries of client_credentials tokens that expired before ``before``."""
        return delete_batch(
            self._db, RevokedToken, RevokedToken.jti, RevokedToken.expires_at < before, batch
        )

    def outbox(self, before: int, batch: int) -> int:
        """Delivered or dead side effects, and never-delivered ones long expired."""
        done = (OutboxEntry.state.in_(("sent", "dead")) & (OutboxEntry.created_at < before)) | (
            OutboxEntry.expires_at < before
        )
        return delete_batch(self._db, OutboxEntry, OutboxEntry.id, done, batch)

    def dev_mailbox(self, before: int, batch: int) -> int:
        """The development mailbox (``/dev/outbox``)."""
        return delete_batch(
            self._db, OutboxMessage, OutboxMessage.id, OutboxMessage.created_at < before, batch
        )

"""Persistence ports: the unit of work, the token store and the session store, as Protocols.

A use case runs in one :meth:`UnitOfWork.transaction`: everything it writes is committed
together when the block ends, or nothing is when it raises. Blocks nest: an inner block
joins the transaction of the outer one, so a service method that opens its own block can
also run as a step of a larger use case (the token endpoint, logout).

The SQL adapters live in :mod:`idp.adapters.sql`; the in-memory twins in
:mod:`idp.adapters.persistence_memory` serve unit tests that need no database server.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from idp.adapters.sql.models import AuthorizationCode, Client, Grant, SocialIdentity, SsoSession
from idp.domain.access import AccessGrant
from idp.domain.audit import AuditEvent


class UnitOfWork(Protocol):
    def transaction(self) -> AbstractContextManager[None]:
        """Commit on success, roll back on any exception; join an enclosing block."""
        ...

    @property
    def active(self) -> bool:
        """True inside a :meth:`transaction` block (of this session, any depth)."""
        ...

    def end_read(self) -> None:
        """Release a read-only transaction begun outside any block; a no-op inside one."""
        ...


class TokenStore(Protocol):
    """Authorization codes and grants (access tokens with their refresh tokens).

    Records are the mapped classes of :mod:`idp.adapters.sql.models`; the memory twin keeps
    detached instances. Each conditional method is one atomic step: of parallel callers on
    one record exactly one gets a truthy answer.
    """

    def add_code(self, code: AuthorizationCode) -> None: ...

    def code_by_hash(self, code_hash: str) -> AuthorizationCode | None: ...

    def claim_code(self, code_hash: str, client_id: str, now: int) -> AuthorizationCode | None:
        """Redeem a code in one step (``UPDATE … SET consumed_at WHERE code_hash AND
        client_id AND consumed_at IS NULL RETURNING``): the code as claimed for the one
        winner; None when it is unknown, another client's, or consumed already."""
        ...

    def add_grant(self, grant: Grant) -> None: ...

    def grant(self, grant_id: str) -> Grant | None: ...

    def grant_by_refresh(self, refresh_hash: str) -> Grant | None: ...

    def claim_refresh(self, refresh_hash: str, client_id: str, now: int) -> Grant | None:
        """Claim a live refresh token of ``client_id`` for one rotation, in one step
        (``UPDATE … SET rotated_at WHERE refresh_hash AND client_id AND rotated_at IS NULL
        AND revoked_at IS NULL AND family_expires_at > now RETURNING``); the claimed grant,
        or None when it is unknown, another client's, rotated, revoked or expired."""
        ...

    def revoke_family(self, family_id: str, now: int) -> int: ...

    def revoke_grant(self, grant_id: str, now: int) -> int: ...

    def revoke_code_families(self, code_id: int, now: int) -> int:
        """Revoke every family started by the code ``code_id`` (a replayed code)."""
        ...

    def revoke_for(
        self, user_id: str, now: int, client_id: str | None = None, sid: str | None = None
    ) -> int: ...

    def access_by_jti(self, jti: str) -> AccessGrant | None:
        """The unrevoked grant of access token ``jti`` with its holder, in one read."""
        ...

    def deny(self, jti: str, expires_at: int) -> None:
        """Put a stateless (client_credentials) token's ``jti`` on the deny list until
        ``expires_at``; a ``jti`` already there is left as it is."""
        ...

    def denied(self, jti: str) -> bool: ...


class SessionStore(Protocol):
    """SSO sessions of browsers and the clients that received tokens in each."""

    def add(self, session: SsoSession) -> None: ...

    def get(self, session_id: str) -> SsoSession | None: ...

    def by_token_hash(self, token_hash: str) -> SsoSession | None: ...

    def end(self, session_id: str, now: int) -> bool:
        """``UPDATE … SET revoked_at WHERE revoked_at IS NULL``; True for the one winner."""
        ...

    def end_all(self, user_id: str, now: int, keep: str | None = None) -> int:
        """End every live session of the account but ``keep``."""
        ...

    def live_for(self, user_id: str, now: int) -> list[SsoSession]:
        """The account's live sessions, newest first."""
        ...

    def note_client(self, session_id: str, client_id: str) -> None:
        """Remember ``client_id`` for the session; a pair already there is left as it is."""
        ...

    def clients_of(self, session_id: str) -> list[Client]: ...


class SocialIdentityStore(Protocol):
    """Social network accounts linked to cabinet accounts, keyed by ``(provider, subject)``."""

    def find(self, provider: str, subject: str) -> SocialIdentity | None: ...

    def get(self, identity_id: int) -> SocialIdentity | None: ...

    def for_user(self, user_id: str) -> list[SocialIdentity]:
        """The account's links, oldest first."""
        ...

    def add(self, identity: SocialIdentity) -> None:
        """Queued in the caller's transaction; a taken ``(provider, subject)`` fails at flush."""
        ...

    def remove(self, identity: SocialIdentity) -> None: ...


class AuditLog(Protocol):
    """The security audit trail: append-only rows written in the caller's unit of work."""

    def add(self, event: AuditEvent) -> None: ...

    def recent(self, subject: str, limit: int) -> list[AuditEvent]:
        """The subject's latest events, newest first."""
        ...

    def between(
        self,
        since: int,
        until: int | None = None,
        subject: str | None = None,
        after: int = 0,
        limit: int = 1000,
    ) -> list[AuditEvent]:
        """At most ``limit`` events with ``since <= at < until`` (of one subject) and an id
        above ``after``, in the order they were written (one page of an export)."""
        ...

    def purge_before(self, cutoff: int, batch: int) -> int:
        """Delete one batch of at most ``batch`` events older than ``cutoff``; how many."""
        ...

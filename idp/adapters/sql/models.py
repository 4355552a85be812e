"""Relational schema of the identity provider (SQLAlchemy 2 declarative models).

Times are whole seconds since the epoch (``BigInteger``): they compare the same way on
SQLite and PostgreSQL and carry no time-zone ambiguity. Secrets are never stored in clear:
refresh tokens, codes and session ids as SHA-256, client secrets as a keyed digest,
passwords as argon2id, private keys encrypted with a key derived from ``IDP_SECRET_KEY``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from idp.domain.access import account_usable


class Base(DeclarativeBase):
    """Declarative base shared by every model."""


class User(Base):
    """An account of the cabinet; ``id`` is the OpenID ``sub``."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    family_name: Mapped[str] = mapped_column(String(100))
    given_name: Mapped[str] = mapped_column(String(100))
    middle_name: Mapped[str | None] = mapped_column(String(100))
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    email_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    phone: Mapped[str | None] = mapped_column(String(16), unique=True)
    phone_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    locale: Mapped[str] = mapped_column(String(8), default="ru")
    region: Mapped[str | None] = mapped_column(String(100))
    # "active" or "legacy" (imported from an older regional cabinet, not yet upgraded).
    status: Mapped[str] = mapped_column(String(16), default="active")
    legacy_source: Mapped[str | None] = mapped_column(String(64))
    terms_version: Mapped[str | None] = mapped_column(String(32))
    privacy_version: Mapped[str | None] = mapped_column(String(32))
    terms_accepted_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    password_changed_at: Mapped[int] = mapped_column(BigInteger, default=0)
    # «Завершить регистрацию без привязки лицевого счета»: when the person chose it.
    attach_skipped_at: Mapped[int | None] = mapped_column(BigInteger)
    # Automatic attachment at "account confirmed" (idp/services/auto_attach.py): set while the
    # linking service has not answered yet (retried), then the numbers it attached.
    auto_attach_pending_since: Mapped[int | None] = mapped_column(BigInteger, index=True)
    auto_attached: Mapped[list[str] | None] = mapped_column(JSON)
    # Blocked by the support desk (``idp support block``): no sign-in, no tokens.
    blocked_at: Mapped[int | None] = mapped_column(BigInteger)

    @property
    def usable(self) -> bool:
        """May sign in and use its tokens: an active account not blocked by support."""
        return account_usable(self.status, self.blocked_at)


class Client(Base):
    """A registered relying party (RFC 7591 metadata names where they exist)."""

    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    secret_digest: Mapped[str | None] = mapped_column(String(128))
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    first_party: Mapped[bool] = mapped_column(Boolean, default=False)
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    grant_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    token_endpoint_auth_method: Mapped[str] = mapped_column(String(32))
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    backchannel_logout_uri: Mapped[str | None] = mapped_column(String(2000))
    id_token_signed_response_alg: Mapped[str] = mapped_column(String(8), default="ES256")
    created_at: Mapped[int] = mapped_column(BigInteger)


class SigningKey(Base):
    """A token-signing key: published, then signing from ``activates_at``, then retired and
    still published until ``publish_until``."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(String(8), index=True)
    private_jwk_enc: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[int] = mapped_column(BigInteger)
    # Published from creation, used for signing only from here: every replica's and every
    # resource server's cached JWK Set holds a key before any token signed with it exists.
    activates_at: Mapped[int | None] = mapped_column(BigInteger)
    retired_at: Mapped[int | None] = mapped_column(BigInteger)
    publish_until: Mapped[int | None] = mapped_column(BigInteger)


class AuthorizationCode(Base):
    """RFC 6749 §4.1.2: single use, short-lived, bound to client and redirect URI."""

    __tablename__ = "authorization_codes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(String(2000))
    scope: Mapped[str] = mapped_column(String(1000))
    nonce: Mapped[str | None] = mapped_column(String(512))
    code_challenge: Mapped[str] = mapped_column(String(128))
    code_challenge_method: Mapped[str] = mapped_column(String(8))
    auth_time: Mapped[int] = mapped_column(BigInteger)
    acr: Mapped[str | None] = mapped_column(String(64))
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    sid: Mapped[str | None] = mapped_column(String(36))
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    consumed_at: Mapped[int | None] = mapped_column(BigInteger)


class Grant(Base):
    """One issued access token and, optionally, its refresh token.

    Refresh tokens rotate: every use creates a new row in the same ``family_id`` and marks
    the old one ``rotated_at``; reuse of a rotated token revokes the whole family
    (RFC 9700 §4.14.2). ``code_id`` links the family to the code that started it, so a
    replayed code can revoke what it issued (RFC 6749 §4.1.2).
    """

    __tablename__ = "grants"
    __table_args__ = (Index("ix_grants_family", "family_id"), Index("ix_grants_user", "user_id"))

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    family_id: Mapped[str] = mapped_column(String(36))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.client_id", ondelete="CASCADE"))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    code_id: Mapped[int | None] = mapped_column(Integer, index=True)
    sid: Mapped[str | None] = mapped_column(String(36), index=True)
    scope: Mapped[str] = mapped_column(String(1000))
    audience: Mapped[list[str]] = mapped_column(JSON, default=list)
    access_jti: Mapped[str] = mapped_column(String(64), unique=True)
    access_expires_at: Mapped[int] = mapped_column(BigInteger)
    refresh_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    family_expires_at: Mapped[int] = mapped_column(BigInteger)
    auth_time: Mapped[int | None] = mapped_column(BigInteger)
    acr: Mapped[str | None] = mapped_column(String(64))
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_at: Mapped[int] = mapped_column(BigInteger)
    rotated_at: Mapped[int | None] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


class RevokedToken(Base):
    """A revoked access token that has no grant row: a client_credentials token (RFC 7009).

    Service tokens are not stored when issued; revoking one stores its ``jti`` here until the
    token's own ``exp``, after which the signature check refuses it anyway and ``idp purge``
    removes the row. Introspection reads it by primary key.
    """

    __tablename__ = "revoked_tokens"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[int] = mapped_column(BigInteger, index=True)


class SsoSession(Base):
    """The browser's single sign-on session; the cookie holds a secret whose SHA-256 is here."""

    __tablename__ = "sso_sessions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    auth_time: Mapped[int] = mapped_column(BigInteger)
    acr: Mapped[str | None] = mapped_column(String(64))
    amr: Mapped[list[str]] = mapped_column(JSON, default=list)
    remember: Mapped[bool] = mapped_column(Boolean, default=False)
    user_agent: Mapped[str | None] = mapped_column(String(300))
    ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_seen_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    revoked_at: Mapped[int | None] = mapped_column(BigInteger)


class SessionClient(Base):
    """Which clients received tokens in a session: the audience of back-channel logout."""

    __tablename__ = "session_clients"

    session_id: Mapped[str] = mapped_column(
        ForeignKey("sso_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True
    )


class Consent(Base):
    """Scopes a user granted to a (non-first-party) client; revocable from the account pages."""

    __tablename__ = "consents"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[str] = mapped_column(
        ForeignKey("clients.client_id", ondelete="CASCADE"), primary_key=True
    )
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    granted_at: Mapped[int] = mapped_column(BigInteger)


class OutboxMessage(Base):
    """A message kept by the development outbox senders, shown at ``/dev/outbox``."""

    __tablename__ = "outbox_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(8))  # "sms" | "email"
    recipient: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)


class Verification(Base):
    """A self-service flow that proves control of a contact: registration, password recovery
    or a contact change. ``state`` follows the flow's transition table; the secret (SMS code
    or e-mail link token) is stored as SHA-256 and counted: tries, sends, cooldown."""

    __tablename__ = "verifications"
    __table_args__ = (Index("ix_verifications_contact", "contact_kind", "contact_value"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(16))  # register | recover | change_contact
    state: Mapped[str] = mapped_column(String(24))
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    contact_kind: Mapped[str] = mapped_column(String(8))  # phone | email
    contact_value: Mapped[str] = mapped_column(String(254))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    secret_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    secret_expires_at: Mapped[int | None] = mapped_column(BigInteger)
    # Wrong answers over the whole flow (never reset) and to the current code (reset by a new
    # code): a code dies after 5, the flow after 20.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    code_failures: Mapped[int] = mapped_column(Integer, default=0)
    sends: Mapped[int] = mapped_column(Integer, default=0)
    last_sent_at: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[int] = mapped_column(BigInteger)
    completed_at: Mapped[int | None] = mapped_column(BigInteger)


class SocialIdentity(Base):
    """An account at a social network linked to a cabinet account, keyed by
    ``(provider, subject)`` — never by e-mail. The e-mail and name are a snapshot shown in
    «Персональная информация», never used to find an account."""

    __tablename__ = "social_identities"
    __table_args__ = (UniqueConstraint("provider", "subject", name="uq_social_provider_subject"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(16))
    subject: Mapped[str] = mapped_column(String(255))
    display_email: Mapped[str | None] = mapped_column(String(254))
    display_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(BigInteger)
    last_used_at: Mapped[int | None] = mapped_column(BigInteger)


class ConsumerCursor(Base):
    """How far a consumer of another service's event stream has got (resumable, at least
    once; events are de-duplicated by id in the store)."""

    __tablename__ = "consumer_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class OutboxEntry(Base):
    """One side effect to deliver (an SMS, an e-mail, a back-channel logout POST), written in
    the transaction of the change it announces and delivered by ``idp worker`` after commit.

    ``state`` is ``pending`` → ``sent`` or ``dead``. A pending row is due at ``due_at_ms``;
    a worker claims it by moving ``due_at_ms`` a lease ahead under its ``claim`` token, so a
    crashed worker's rows come due again. ``payload`` holds what must be delivered (codes and
    links included): it is never logged. Unlike :class:`OutboxMessage` (the development
    mailbox), these rows exist in every environment."""

    __tablename__ = "outbox_entries"
    __table_args__ = (Index("ix_outbox_entries_due", "state", "due_at_ms"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(8))  # sms | email | logout
    purpose: Mapped[str] = mapped_column(String(32))  # template or event name, for logs
    ref: Mapped[str | None] = mapped_column(String(64), index=True)  # e.g. the flow's id
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(8), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    due_at_ms: Mapped[int] = mapped_column(BigInteger)
    claim: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[int] = mapped_column(BigInteger)
    # Never delivered after this: a code past its validity is noise, not a message.
    expires_at: Mapped[int] = mapped_column(BigInteger)
    sent_at: Mapped[int | None] = mapped_column(BigInteger)


class ParkedEvent(Base):
    """An event of another service's stream that failed to be processed: retried up to a
    limit (``attempts``), then set aside (``parked_at``) so the stream moves on. Kept for an
    operator to inspect and replay."""

    __tablename__ = "parked_events"

    consumer: Mapped[str] = mapped_column(String(64), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[int] = mapped_column(BigInteger)
    event: Mapped[dict[str, Any]] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    first_failed_at: Mapped[int] = mapped_column(BigInteger)
    parked_at: Mapped[int | None] = mapped_column(BigInteger)


class AuditEntry(Base):
    """One security event (:mod:`idp.domain.audit`), written in the transaction of the change
    it records. ``details`` never holds a secret."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_events_subject", "subject", "at"),
        Index("ix_audit_events_at", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[int] = mapped_column(BigInteger)
    event_type: Mapped[str] = mapped_column(String(32))
    # No foreign key: the trail outlives the account it speaks of.
    subject: Mapped[str | None] = mapped_column(String(36))
    operator: Mapped[str | None] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

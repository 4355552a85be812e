"""What a presented access token stands for, as userinfo, introspection and revocation need it.

Two kinds of access token (RFC 9068 JWTs) are issued:

* tokens for a person (code flow, refresh): a grant row records each, so it can be revoked
  with its refresh family, by the person, by support or by logout; :class:`AccessGrant`
  carries that row's fields and the account's, read together in one joined statement;
* client_credentials tokens for a service (RFC 6749 §4.4): nothing is stored when they are
  issued; their ``jti`` starts with :data:`SERVICE_JTI_PREFIX` (signed, so it cannot be
  forged), and revoking one puts the ``jti`` on a deny list until the token's ``exp``.
"""

from __future__ import annotations

from dataclasses import dataclass

SERVICE_JTI_PREFIX = "svc."
"""Starts the ``jti`` of a client_credentials token; ``.`` never occurs in the random part
(base64url), so no token with a grant row carries it."""


def account_usable(status: str, blocked_at: int | None) -> bool:
    """May sign in and use its tokens: an active account not blocked by support."""
    return status == "active" and blocked_at is None


@dataclass(frozen=True, slots=True)
class Holder:
    """The account a person's access token speaks for: what userinfo releases
    (OIDC Core §5.1) and whether the account may still use tokens."""

    id: str
    family_name: str
    given_name: str
    middle_name: str | None
    email: str | None
    email_verified: bool
    phone: str | None
    phone_verified: bool
    locale: str
    updated_at: int
    status: str
    blocked_at: int | None

    @property
    def usable(self) -> bool:
        return account_usable(self.status, self.blocked_at)


HOLDER_FIELDS = tuple(Holder.__dataclass_fields__)


@dataclass(frozen=True, slots=True)
class AccessGrant:
    """A live (unrevoked) access token: its grant row with its ``holder``, or, for a
    client_credentials token, its verified claims alone (``grant_id`` is None)."""

    jti: str
    client_id: str
    scope: str
    audience: tuple[str, ...]
    issued_at: int
    expires_at: int
    user_id: str | None = None
    auth_time: int | None = None
    grant_id: str | None = None
    family_id: str | None = None
    has_refresh: bool = False
    holder: Holder | None = None

    @property
    def stateless(self) -> bool:
        """A client_credentials token: revoked through the deny list, not a grant row."""
        return self.grant_id is None

"""Security events of the audit trail: the closed list of event types and their meanings.

An event says who (the account's ``subject`` and, for support-desk actions, the
``operator``), what (one of :data:`EVENT_TYPES`), when, from which address and user agent,
and small ``details`` that never hold a secret (no password, code, link token, client secret
or token: :func:`check_details` refuses such keys). The README's audit table is this list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from idp.domain.errors import ValidationError

#: Every event type, with its meaning (documented in the README as they are here).
EVENT_TYPES: dict[str, str] = {
    "signin.success": "a person signed in (by password, or through a social provider)",
    "signin.failure": "a sign-in failed: unknown login or wrong password",
    "signin.locked": "a sign-in was refused because the account is locked out after failures",
    "signin.blocked": "a correct password was given for an account blocked by the support desk",
    "account.registered": "an account was created (self-service registration or the CLI)",
    "contact.changed": "a phone or e-mail was confirmed as the account's new login",
    "password.changed": "the person changed the password in «Персональная информация»",
    "password.set": "the person set a first password on an account made without one",
    "password.recovered": "a new password was set through password recovery",
    "session.ended": "a sign-in session ended (logout, a new sign-in, a password change…)",
    "social.link": "a social network profile was linked to the account",
    "social.unlink": "a social network profile was unlinked from the account",
    "billing.attach": "a billing account was attached (linking service event)",
    "billing.detach": "a billing account was detached (linking service event)",
    "billing.reattach": "a billing account moved to this account from another holder",
    "billing.taken": "a billing account this account held moved to another holder",
    "client.created": "a relying party was registered with `idp clients create`",
    "client.secret_rotated": "a client's secret was replaced with `idp clients rotate-secret`",
    "client.deleted": "a relying party was removed with `idp clients delete`",
    "key.rotated": "a token-signing key was created with `idp keys rotate`",
    "support.lookup": "the support desk looked the account up",
    "support.unlocked": "the support desk lifted a sign-in lockout",
    "support.sessions_ended": "the support desk ended every session of the account",
    "support.blocked": "the support desk blocked the account",
    "support.unblocked": "the support desk unblocked the account",
}

#: Detail keys that could carry a secret: an event with one of them is refused.
SECRET_WORDS = ("password", "secret", "token", "code", "pin", "otp", "cookie", "hash")


class UnknownEventType(ValidationError):
    """An event type outside :data:`EVENT_TYPES`: a programming error, never stored."""


def check_event_type(event_type: str) -> str:
    if event_type not in EVENT_TYPES:
        raise UnknownEventType(f"unknown audit event type {event_type!r}")
    return event_type


def check_details(details: dict[str, Any] | None) -> dict[str, Any]:
    """Small, secret-free details: scalar values only, no key naming a secret."""
    details = dict(details or {})
    for key, value in details.items():
        if any(word in key.lower() for word in SECRET_WORDS):
            raise ValidationError(f"audit detail {key!r} may hold a secret")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise ValidationError(f"audit detail {key!r} is not a scalar")
        if isinstance(value, str) and len(value) > 200:
            details[key] = value[:200]
    return details


@dataclass(frozen=True)
class AuditEvent:
    """One row of the audit trail (``at`` in whole seconds since the epoch)."""

    event_type: str
    at: int
    subject: str | None = None
    operator: str | None = None
    address: str | None = None
    user_agent: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "type": self.event_type,
            "subject": self.subject,
            "operator": self.operator,
            "address": self.address,
            "user_agent": self.user_agent,
            "details": self.details,
        }


@dataclass(frozen=True)
class RequestContext:
    """Where a change came from: the client address and user agent of the HTTP request, or
    nothing for the command line and background consumers."""

    address: str | None = None
    user_agent: str | None = None


def no_request() -> RequestContext:
    return RequestContext()

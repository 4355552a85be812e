"""Logins: a confirmed e-mail address or a Russian mobile number in any common notation.

The rules themselves are shared with the linking service (:mod:`elk_common.contacts`); here
their error becomes the IdP's ``ValidationError``.
"""

from __future__ import annotations

from elk_common import contacts
from elk_common.errors import InvalidValue
from idp.domain.errors import ValidationError


def normalize_email(raw: str) -> str:
    """An address lower-cased after a syntax check (RFC 5321/6531), so one mailbox is one login."""
    try:
        return contacts.normalize_email(raw)
    except InvalidValue as exc:
        raise ValidationError(str(exc), field=exc.field) from None


def normalize_phone(raw: str, region: str = "RU", mobile_only: bool = True) -> str:
    """Return a number in E.164 (``+79991234567``) from ``8 (999) 123-45-67`` etc.

    Logins are mobile numbers; ``mobile_only=False`` also admits landlines (Home Phone).
    """
    try:
        return contacts.normalize_phone(raw, region, mobile_only=mobile_only)
    except InvalidValue as exc:
        raise ValidationError(str(exc), field=exc.field) from None


def parse_login(raw: str) -> tuple[str, str]:
    """Classify a login as ``("email", value)`` or ``("phone", value)``, normalised."""
    if "@" in raw:
        return "email", normalize_email(raw)
    return "phone", normalize_phone(raw)

"""Contacts as both services compare them: e-mail addresses and Russian phone numbers."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from elk_common.errors import InvalidValue

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,253}\.[^@\s.]{2,63}$")


def normalize_email(raw: str) -> str:
    """Validate an address's syntax (email-validator, no DNS lookups: RFC 5321/6531) and
    return it lower-cased, so one mailbox is one login."""
    value = unicodedata.normalize("NFC", raw.strip())
    if len(value) > 254 or not _EMAIL.match(value):
        raise InvalidValue("not an e-mail address", field="email")
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        raise InvalidValue("not an e-mail address", field="email") from None
    return checked.normalized.lower()


def normalize_phone(raw: str, region: str = "RU", mobile_only: bool = True) -> str:
    """Return a number in E.164 (``+79991234567``) from ``8 (999) 123-45-67`` etc.

    Logins are mobile numbers; ``mobile_only=False`` also admits landlines (Home Phone).
    """
    value = raw.strip()
    if len(value) > 32 or re.search(r"[^\d\s()+\-.]", value):
        raise InvalidValue("not a phone number", field="phone")
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException:
        raise InvalidValue("not a phone number", field="phone") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidValue("not a phone number", field="phone")
    if mobile_only and phonenumbers.number_type(number) not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise InvalidValue("not a mobile number", field="phone")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

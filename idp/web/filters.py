"""Jinja filters for how values are shown on the pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import phonenumbers
from flask import Flask
from flask_babel import lazy_gettext

from idp.domain.user_agent import describe

# What a scope lets an application see, as the consent page and «Приложения с доступом» say it.
SCOPE_LABELS = {
    "openid": lazy_gettext("Идентификатор вашей учётной записи"),
    "profile": lazy_gettext("Фамилия, имя и отчество"),
    "email": lazy_gettext("Адрес электронной почты"),
    "phone": lazy_gettext("Номер мобильного телефона"),
    "offline_access": lazy_gettext("Доступ к данным, когда вы не в сети"),
    "linking": lazy_gettext("Ваши лицевые счета"),
}


def format_phone(value: str | None) -> str:
    """An E.164 number as people write it: ``+79995553900`` → ``+7 999 555-39-00``
    (ITU-T E.123 international notation, as libphonenumber formats it). Anything that is not a
    number (an e-mail, a masked number, nothing) is returned as it came."""
    if not value or not value.startswith("+") or not value[1:].isdigit():
        return value or ""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return value
    if not phonenumbers.is_possible_number(number):
        return value
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def format_day(value: float | None) -> str:
    """A moment (seconds since the epoch) as its day, ``dd.mm.yyyy`` (UTC)."""
    if value is None:
        return ""
    return datetime.fromtimestamp(value, tz=UTC).strftime("%d.%m.%Y")


def scope_labels(scopes) -> list[str]:
    """Scopes as what they let an application see, in the page's language (standard ones
    first, in the order above; an unknown scope keeps its name)."""
    order = list(SCOPE_LABELS)
    ranked = sorted(scopes or (), key=lambda s: (order.index(s) if s in order else len(order), s))
    return [str(SCOPE_LABELS.get(s, s)) for s in ranked]


def format_device(user_agent: str | None) -> str:
    """«Chrome, Linux» from a User-Agent header; empty when nothing is recognised."""
    return str(describe(user_agent))


# Moscow time has had no daylight saving since 2014: a fixed offset needs no tz database.
MOSCOW = timezone(timedelta(hours=3))


def format_moment(value: float | None) -> str:
    """A moment (seconds since the epoch) as Moscow time, ``dd.mm.yyyy hh:mm``; empty for
    no moment."""
    if not isinstance(value, int | float):
        return ""
    return datetime.fromtimestamp(value, tz=MOSCOW).strftime("%d.%m.%Y %H:%M")


def init_app(app: Flask) -> None:
    app.jinja_env.filters["phone"] = format_phone
    app.jinja_env.filters["day"] = format_day
    app.jinja_env.filters["moment"] = format_moment
    app.jinja_env.filters["scope_labels"] = scope_labels
    app.jinja_env.filters["device"] = format_device

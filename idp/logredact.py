"""Secrets and personal data kept out of log lines.

Request lines carry secrets: e-mail links put theirs in the path (``/recover/<token>``,
``/confirm/<token>``), interactions are named by a bearer handle (``/consent/<uid>``), and the
query of ``/authorize`` and ``/logout`` holds ``login_hint`` (a phone number or an e-mail
address, personal data under 152-ФЗ), ``state``, ``nonce`` and whole ID tokens
(``id_token_hint``). RFC 6749 §10.3 and §10.12 ask that such values are not disclosed;
OWASP's Logging Cheat Sheet lists them among what is never logged.

Three rules, applied to every request target and to the text of every log record:

* **Query: an allowlist.** Only the parameters in :data:`SAFE_QUERY_PARAMS` keep their value;
  every other value becomes ``[redacted]`` — a parameter added tomorrow is hidden until
  someone decides it is harmless.
* **Path: the secret-bearing routes.** The segment after a prefix in
  :data:`SECRET_PATH_PREFIXES` is redacted unless it is a plain route word
  (``/recover/confirm``); ``tests/idp/test_log_secrets.py`` checks that every route with a
  path variable is either listed here or has a variable named in :data:`SAFE_PATH_VARIABLES`.
* **Anywhere: what looks like a secret or a contact.** E-mail addresses and phone numbers are
  masked, and long random-looking words (tokens, codes, JWT parts, digests) are redacted, so
  a secret that reaches a message by another road (an exception text, a mistyped link that
  answers 404) is hidden too. Canonical UUIDs (account and flow ids) stay readable.

:class:`RedactingFilter` applies them to a handler; :func:`protect` attaches it to the
handlers of the given loggers. Nothing here imports Flask, gunicorn or werkzeug.
"""

from __future__ import annotations

import logging
import re
import string
from urllib.parse import unquote_plus

REDACTED = "[redacted]"
PHONE = "[phone]"

# Values that name the client and the shape of the request, never the person or a secret.
SAFE_QUERY_PARAMS = frozenset(
    {
        "response_type",
        "response_mode",
        "client_id",
        "scope",
        "prompt",
        "max_age",
        "display",
        "ui_locales",
        "claims_locales",
        "acr_values",
        "code_challenge_method",
        "resource",
        "lang",
        # Our own pages' notices after a redirect.
        "welcome",
        "changed",
        "saved",
        "reset",
        "upgraded",
    }
)

# Routes whose next path segment is a bearer secret.
SECRET_PATH_PREFIXES = (
    "/recover/",
    "/confirm/",
    "/consent/",
    "/authorize/resume/",
    "/login/social/proof/",
)
# Path variables that are not secrets (a static file name, a client's public id, a social
# provider's name, a linked social account's row id).
SAFE_PATH_VARIABLES = frozenset({"filename", "client_id", "provider", "identity_id"})

_PREFIXES = "|".join(re.escape(p) for p in SECRET_PATH_PREFIXES)
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_PATTERN = re.compile(
    rf"(?P<path>(?:{_PREFIXES}))(?P<segment>[^/?#\s\"'<>]+)"
    r"|\?(?P<query>[^\s\"'<>#]+)"
    rf"|(?P<uuid>(?<![\w-]){_UUID}(?![\w-]))"
    r"|(?P<email>[\w.%+\-]+(?:@|%40)(?P<domain>[\w\-]+(?:\.[\w\-]+)+))"
    r"|(?P<phone>(?:\+|%2[Bb])\d{10,14}(?!\d)|(?<![\w+])[78]9\d{9}(?!\d))"
    r"|(?P<word>[A-Za-z0-9_\-]{20,})"
)
# The fast path of redact_text (_unchanged): every match of _PATTERN that changes the text needs
# a secret path prefix, "?", "@" or "%", one of these digit runs, or a random-looking word of 20
# characters. Each test is a superset of its alternative, never a subset;
# tests/idp/test_logredact.py compares both paths.
_PHONE_DIGITS = re.compile(r"\+\d{10}|[78]9\d{9}")
_LONG_WORD = re.compile(r"[A-Za-z0-9_\-]{20,}")
# email.utils.make_msgid's left part (time.pid.random): a Message-ID ops look up, no person.
_MESSAGE_ID = re.compile(r"\d+\.\d+\.\d+")
_ROUTE_WORD = re.compile(r"[a-z]{1,16}")
_PARAM_NAME = re.compile(r"[a-z][a-z0-9_.\-]{0,31}")
_ASCII_LETTERS = string.ascii_letters.encode()
_ASCII_UPPER = string.ascii_uppercase.encode()
_ASCII_DIGITS = string.digits.encode()


def _random_looking(word: str) -> bool:
    """Tokens from ``secrets.token_urlsafe`` (24 characters and more here) mix letters with
    digits, or upper with lower case throughout; identifiers in tracebacks
    (``InFailedSqlTransaction``: capitals only at word starts) rarely do either."""
    if word.isascii():  # what _PATTERN hands over: the same counts, in C
        raw = word.encode()
        letters = len(raw) - len(raw.translate(None, _ASCII_LETTERS))
        if not letters:
            return False
        if len(raw.translate(None, _ASCII_DIGITS)) < len(raw):
            return True
        upper = (len(raw) - len(raw.translate(None, _ASCII_UPPER))) / letters
        return 0.25 <= upper <= 0.75
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return False
    if any(c.isdigit() for c in word):
        return True
    upper = sum(c.isupper() for c in letters) / len(letters)
    return 0.25 <= upper <= 0.75


def redact_query(query: str) -> str:
    """``a=1&login_hint=+7…`` → ``a=[redacted]&login_hint=[redacted]`` unless allowlisted."""
    out = []
    for part in re.split(r"([&;])", query):
        if part in ("&", ";", ""):
            out.append(part)
            continue
        name, sep, value = part.partition("=")
        plain = unquote_plus(name)
        if not _PARAM_NAME.fullmatch(plain):
            out.append(REDACTED)
        elif not sep:
            out.append(name)
        elif plain in SAFE_QUERY_PARAMS:
            out.append(f"{name}={_mask(value)}")
        else:
            out.append(f"{name}={REDACTED}")
    return "".join(out)


def _replace(match: re.Match) -> str:
    if match.group("path"):
        segment = match.group("segment")
        return match.group("path") + (segment if _ROUTE_WORD.fullmatch(segment) else REDACTED)
    if match.group("query"):
        return "?" + redact_query(match.group("query"))
    if match.group("uuid"):
        return match.group("uuid")
    if match.group("email"):
        if _MESSAGE_ID.fullmatch(match.group("email").partition("@")[0]):
            return match.group("email")
        return "***@" + match.group("domain")
    if match.group("phone"):
        return PHONE
    word = match.group("word")
    return REDACTED if _random_looking(word) else word


def _mask(value: str) -> str:
    """Contacts only, inside an allowlisted value (a ``client_id`` is random but public)."""
    return _PATTERN.sub(lambda m: _replace(m) if m["email"] or m["phone"] else m[0], value)


def redact_text(text: str) -> str:
    """Every rule, applied to free text: a request line, a URL, a message, a traceback."""
    if _unchanged(text):
        return text
    return _PATTERN.sub(_replace, text)


def _unchanged(text: str) -> bool:
    """True when :data:`_PATTERN` cannot change ``text``: no query (``?``), no ``@`` or ``%``
    (e-mail addresses, encoded ``@`` and ``+``), no secret path prefix, nothing shaped like a
    phone number, and every 20-character word plain (a UUID is kept by the pattern anyway).
    Cheap string tests first: most log lines (access lines of the API) pass them all."""
    if "?" in text or "@" in text or "%" in text:
        return False
    if "/" in text and any(prefix in text for prefix in SECRET_PATH_PREFIXES):
        return False
    if _PHONE_DIGITS.search(text) is not None:
        return False
    return not any(_random_looking(word) for word in _LONG_WORD.findall(text))


def redact_target(target: str) -> str:
    """A request target (``/recover/…?…``) or an absolute URL (a Referer, a Location)."""
    return redact_text(target)


class RedactingFilter(logging.Filter):
    """Rewrites a record so that no handler can print a secret: the message with its
    arguments merged, the formatted exception and the stack are redacted in place."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must still be logged
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact_text(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True


def protect(*loggers: logging.Logger) -> None:
    """Attach one :class:`RedactingFilter` to every handler of ``loggers`` (idempotent)."""
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())


def formatter(log_format: str) -> logging.Formatter:
    """``json``: one object per line with the request id (:mod:`elk_common.logjson`);
    ``text``: a plain line."""
    if log_format == "json":
        from elk_common.logjson import JsonFormatter

        return JsonFormatter("idp")
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")


def configure_logging(
    level: int = logging.INFO, stream=None, log_format: str = "text"
) -> logging.Handler:
    """Give the root logger one redacting handler (``idp serve``, the CLI).

    A root handler also keeps Flask from adding its own, which writes to ``wsgi.errors``
    around every filter. The filter runs before the formatter: JSON lines are redacted too.
    """
    root = logging.getLogger()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter(log_format))
    root.addHandler(handler)
    # Libraries speak at WARNING; our own loggers and werkzeug's request log at ``level``.
    root.setLevel(max(level, logging.WARNING))
    for name in ("idp", "werkzeug"):
        logging.getLogger(name).setLevel(level)
    protect(root)
    return handler

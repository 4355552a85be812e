"""The servers' loggers with :mod:`idp.logredact` built in.

* :class:`GunicornLogger` — ``logger_class`` of ``deploy/gunicorn.conf.py``: every access-log
  atom is redacted (:class:`RedactedAtoms`), and the error log, the access log and the root
  logger (the app's own loggers, Flask's included) write through a ``RedactingFilter``.
* :class:`RedactingRequestHandler` — werkzeug's development server (``idp serve``, which
  ``make run`` starts) logging a redacted request line.

With ``IDP_LOG_FORMAT=json`` (production's default) every line is one JSON object, the access
lines included, each with the request id the response carried (``X-Request-Id``).
"""

from __future__ import annotations

import functools
import logging
import os
import re

from gunicorn.glogging import Logger, SafeAtoms
from werkzeug.serving import WSGIRequestHandler

from elk_common.logjson import HEADER, bind_request_id, reset_request_id
from idp.config import log_format_of
from idp.logredact import REDACTED, formatter, protect, redact_target, redact_text

# Atoms never printed at all: credentials and session cookies (request and response headers,
# their environ twins).
_HIDDEN = ("authorization", "cookie")


@functools.lru_cache(maxsize=256)
def _hidden(key: str) -> bool:
    """An atom never printed (the keys come from ``access_log_format``: a few)."""
    return any(word in key.lower() for word in _HIDDEN)


# Atoms gunicorn makes itself (time, status, sizes, durations, pid): nothing of the client's,
# and the whole line passes the RedactingFilter anyway.
_SERVER_MADE = frozenset({"t", "l", "s", "b", "B", "T", "D", "M", "L", "p"})

# ``%(name)s`` in gunicorn's access_log_format; ``{header}i`` names are case-insensitive.
_ATOM = re.compile(r"%\(([^)]*)\)")


class RedactedAtoms(SafeAtoms):
    """The access log's atoms, each redacted when the format asks for it: the request line
    (``r``), path (``U``), query (``q``), Referer (``f``), and any ``{header}i``, ``{header}o``
    or ``{variable}e`` an operator adds to ``access_log_format``."""

    def __getitem__(self, key: str) -> object:
        value = super().__getitem__(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        if key in _SERVER_MADE:
            return value
        if _hidden(key):
            return REDACTED
        return redact_text(str(value))


class GunicornLogger(Logger):
    """gunicorn's logger with secrets and personal data redacted from every line."""

    atoms_wrapper_class = RedactedAtoms

    def setup(self, cfg) -> None:
        super().setup(cfg)
        root = logging.getLogger()
        # Our app's loggers propagate to the root; without a handler there, Python's
        # last-resort handler or Flask's own (to wsgi.errors) would print around the filter.
        for handler in list(root.handlers):
            if getattr(handler, "_idp_shared", False):
                root.removeHandler(handler)
        if not root.handlers:
            for handler in self.error_log.handlers:
                handler._idp_shared = True
                root.addHandler(handler)
            # Libraries speak at WARNING; our own loggers ("idp", "idp.*") at gunicorn's level.
            root.setLevel(max(self.loglevel, logging.WARNING))
            logging.getLogger("idp").setLevel(self.loglevel)
        if log_format_of(os.environ) == "json":
            for handler in self.error_log.handlers + self.access_log.handlers:
                handler.setFormatter(formatter("json"))
        protect(self.error_log, self.access_log, root)
        names = _ATOM.findall(cfg.access_log_format)
        self._atom_names = frozenset(n.lower() if n.startswith("{") else n for n in names)
        self._request_headers = any(n.endswith("}i") for n in self._atom_names)

    def atoms(self, resp, req, environ, request_time) -> dict:
        """gunicorn's atoms, only those the format prints: it builds one per request header,
        response header and environ variable, and SafeAtoms copies (and RedactedAtoms would
        look at) each; the default format prints nine."""
        if not self._request_headers:
            req = ()  # gunicorn iterates it as the request's headers
        names = self._atom_names
        atoms = super().atoms(resp, req, environ, request_time)
        return {k: v for k, v in atoms.items() if k in names}

    def access(self, resp, req, environ, request_time) -> None:
        """The access line, carrying the request id of the response it describes."""
        request_id = next(
            (value for name, value in resp.headers if name.lower() == HEADER.lower()), None
        )
        token = bind_request_id(request_id)
        try:
            super().access(resp, req, environ, request_time)
        finally:
            reset_request_id(token)


class RedactingRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler whose request-log line has no secret in it, and carries
    the request id of the response."""

    _request_id: str | None = None

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == HEADER.lower():
            self._request_id = value
        super().send_header(keyword, value)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        token = bind_request_id(self._request_id)
        try:
            self._log_request(code, size)
        finally:
            reset_request_id(token)
            self._request_id = None

    def _log_request(self, code: int | str, size: int | str) -> None:
        try:
            line = f"{self.command} {redact_target(self.path)} {self.request_version}"
        except AttributeError:  # a request line too bad to parse
            line = redact_text(self.requestline)
        self.log("info", '"%s" %s %s', line.translate(self._control_char_table), code, size)

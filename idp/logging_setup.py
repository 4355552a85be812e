"""The servers' loggers with :mod:`idp.logredact` built in.

* :class:`GunicornLogger` — ``logger_class`` of ``deploy/gunicorn.conf.py``: every access-log
  atom is redacted (:class:`RedactedAtoms`), and the error log, the access log and the root
  logger (the app's own loggers, Flask's included) write through a ``RedactingFilter``.
* :class:`RedactingRequestHandler` — werkzeug's development server (``idp serve``, which
  ``make run`` starts) logging a redacted request line.
"""

from __future__ import annotations

import logging

from gunicorn.glogging import Logger, SafeAtoms
from werkzeug.serving import WSGIRequestHandler

from idp.logredact import REDACTED, protect, redact_target, redact_text

# Atoms never printed at all: credentials and session cookies (request and response headers,
# their environ twins).
_HIDDEN = ("authorization", "cookie")


class RedactedAtoms(SafeAtoms):
    """The access log's atoms, each redacted when the format asks for it: the request line
    (``r``), path (``U``), query (``q``), Referer (``f``), and any ``{header}i``, ``{header}o``
    or ``{variable}e`` an operator adds to ``access_log_format``."""

    def __getitem__(self, key: str) -> object:
        value = super().__getitem__(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        if any(word in key.lower() for word in _HIDDEN):
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
        protect(self.error_log, self.access_log, root)


class RedactingRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler whose request-log line has no secret in it."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        try:
            line = f"{self.command} {redact_target(self.path)} {self.request_version}"
        except AttributeError:  # a request line too bad to parse
            line = redact_text(self.requestline)
        self.log("info", '"%s" %s %s', line.translate(self._control_char_table), code, size)

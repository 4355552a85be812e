"""Every request gets a request id and is counted.

* **Request id**: an incoming ``X-Request-Id`` that looks like one (a load balancer's) is kept,
  anything else is replaced by a fresh UUID; it is bound for the request's log lines, passed to
  the linking service in gRPC metadata (``idp.adapters.linking_grpc``) and returned in the
  response's ``X-Request-Id``. An id that would print a contact is replaced too.
* **Metrics**: count and latency by Flask endpoint (``oauth.token``, never the raw path, so a
  path's secret never becomes a label and the series stay few), method and status.
"""

from __future__ import annotations

import time

from flask import Flask, g, request

from elk_common.logjson import (
    HEADER,
    accept_request_id,
    bind_request_id,
    new_request_id,
    reset_request_id,
)
from idp.adapters.metrics import observe_request
from idp.logredact import redact_text

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _request_id() -> str:
    sent = request.headers.get(HEADER)
    if not sent:
        return new_request_id()
    value = accept_request_id(sent)
    # A header is the caller's text: one that the log filter would rewrite is not an id.
    return value if redact_text(value) == value else new_request_id()


def init_app(app: Flask) -> None:
    @app.before_request
    def start() -> None:
        g.request_started = time.perf_counter()
        g.request_id = _request_id()
        g.request_id_token = bind_request_id(g.request_id)

    @app.after_request
    def finish(response):
        request_id = g.get("request_id") or new_request_id()
        response.headers[HEADER] = request_id
        started = g.get("request_started")
        if started is not None:
            observe_request(
                request.endpoint or "unmatched",
                request.method if request.method in METHODS else "other",
                response.status_code,
                time.perf_counter() - started,
            )
        return response

    @app.teardown_request
    def unbind(_exc=None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            reset_request_id(token)

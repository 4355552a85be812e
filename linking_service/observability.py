"""What operators see of the linking service: Prometheus metrics, the request id, log lines.

* :class:`ObservingInterceptor` (the outermost interceptor) binds the caller's ``x-request-id``
  (the IdP sends the one of the HTTP request that led to the RPC; a fresh id otherwise) for
  every log line of the RPC, counts RPCs and their latency by method and status code, and logs
  one line per RPC (``linking_service.access``).
* JWKS refreshes are counted through the token verifier's ``on_refresh`` (:func:`jwks_refreshed`),
  database pool use by engine events (:func:`instrument_pool`).
* :func:`configure_logging`: one handler on the root logger, text or JSON lines
  (``LINKING_LOG_FORMAT``), with a filter that hides what looks like a token, a code or a
  contact in any message or traceback — the service never logs one on purpose.

The server is one process (a thread pool), so the default registry is served as is on
``LINKING_METRICS_PORT``. Every metric is listed in README.md («Metrics»).
"""

from __future__ import annotations

import logging
import re
import time

import grpc
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from elk_common.logjson import (
    METADATA_KEY,
    JsonFormatter,
    accept_request_id,
    bind_request_id,
    current_request_id,
    reset_request_id,
)

log = logging.getLogger(__name__)
access_log = logging.getLogger("linking_service.access")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

RPCS = Counter(
    "linking_grpc_requests",
    "RPCs answered, by full method name and status code.",
    ("method", "code"),
)
RPC_LATENCY = Histogram(
    "linking_grpc_request_duration_seconds",
    "RPC handling time by method and status code (a stream: until it ends).",
    ("method", "code"),
    buckets=LATENCY_BUCKETS,
)
JWKS_REFRESHES = Counter(
    "linking_jwks_refreshes",
    "Fetches of the IdP's keys by the token verifier's cache, by result (ok, error).",
    ("result",),
)
POOL_IN_USE = Gauge(
    "linking_db_pool_connections_in_use", "Database connections checked out of the pool."
)
POOL_SIZE = Gauge(
    "linking_db_pool_size", "Connections the pool keeps open (overflow comes on top)."
)


def jwks_refreshed(ok: bool) -> None:
    JWKS_REFRESHES.labels("ok" if ok else "error").inc()


def instrument_pool(engine) -> None:
    from sqlalchemy import event

    size = getattr(engine.pool, "size", None)
    if callable(size):
        POOL_SIZE.inc(size())
    event.listen(engine, "checkout", lambda *_: POOL_IN_USE.inc())
    event.listen(engine, "checkin", lambda *_: POOL_IN_USE.dec())


def serve_metrics(port: int, host: str = "0.0.0.0") -> int:  # noqa: S104 - a pod's own port
    """Serve ``/metrics`` on its own port (never the gRPC one); the port bound."""
    server, _thread = start_http_server(port, addr=host)
    return server.server_address[1]


def _request_id(metadata) -> str:
    for key, value in metadata or ():
        if key == METADATA_KEY:
            return accept_request_id(value if isinstance(value, str) else None)
    return accept_request_id(None)


class ObservingInterceptor(grpc.ServerInterceptor):
    """Request id, count, latency and an access line for every RPC, of every handler kind.

    The observed handler of a method is built once (grpc asks on every RPC) and reads the
    request id from the call's own metadata; the metric children of a (method, code) are
    looked up once too."""

    def __init__(self) -> None:
        # method -> (the handler wrapped, its observed handler); one entry per served method.
        self._observed: dict[str, tuple[object, grpc.RpcMethodHandler]] = {}
        # (method, code) -> (counter child, histogram child)
        self._metrics: dict[tuple[str, str], tuple] = {}

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        cached = self._observed.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        observed = self._observe(method, handler)
        self._observed[method] = (handler, observed)
        return observed

    def _children(self, method: str, code: str) -> tuple:
        children = self._metrics.get((method, code))
        if children is None:
            children = (RPCS.labels(method, code), RPC_LATENCY.labels(method, code))
            self._metrics[(method, code)] = children
        return children

    def _observe(self, method: str, handler) -> grpc.RpcMethodHandler:
        def finish(context, started: float, failed: bool) -> None:
            code = context.code() or (grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK)
            name = code.name if isinstance(code, grpc.StatusCode) else str(code)
            elapsed = time.perf_counter() - started
            count, latency = self._children(method, name)
            count.inc()
            latency.observe(elapsed)
            access_log.info("%s %s %.3fs", method, name, elapsed)

        def unary_response(behavior):
            def run(request, context):
                token = bind_request_id(_request_id(context.invocation_metadata()))
                started, failed = time.perf_counter(), True
                try:
                    result = behavior(request, context)
                    failed = False
                    return result
                finally:
                    finish(context, started, failed)
                    reset_request_id(token)

            return run

        def stream_response(behavior):
            def run(request, context):
                token = bind_request_id(_request_id(context.invocation_metadata()))
                started, failed = time.perf_counter(), True
                try:
                    yield from behavior(request, context)
                    failed = False
                finally:
                    finish(context, started, failed)
                    reset_request_id(token)

            return run

        kinds = (
            (handler.unary_unary, grpc.unary_unary_rpc_method_handler, unary_response),
            (handler.unary_stream, grpc.unary_stream_rpc_method_handler, stream_response),
            (handler.stream_unary, grpc.stream_unary_rpc_method_handler, unary_response),
            (handler.stream_stream, grpc.stream_stream_rpc_method_handler, stream_response),
        )
        for behavior, make, wrap in kinds:
            if behavior is not None:
                return make(
                    wrap(behavior),
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
        return handler


# --- logging ---------------------------------------------------------------------------------

# Bearer tokens, JWT parts, codes and link secrets are long random-looking words; contacts are
# e-mail addresses and phone numbers. UUIDs (account and flow ids) stay readable.
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_SECRETISH = re.compile(
    r"(?P<jwt>eyJ[\w-]*\.[\w-]*\.?[\w-]*)"
    rf"|(?P<uuid>(?<![\w-]){_UUID}(?![\w-]))"
    r"|(?P<email>[\w.%+\-]+@(?P<domain>[\w\-]+(?:\.[\w\-]+)+))"
    r"|(?P<phone>\+\d{10,14}(?!\d)|(?<![\w+])[78]9\d{9}(?!\d))"
    r"|(?P<word>[A-Za-z0-9_\-]{20,})"
)


def _hide(match: re.Match) -> str:
    if match["jwt"]:
        return "[redacted]"
    if match["uuid"]:
        return match["uuid"]
    if match["email"]:
        return "***@" + match["domain"]
    if match["phone"]:
        return "[phone]"
    word = match["word"]
    letters = [c for c in word if c.isalpha()]
    upper = sum(c.isupper() for c in letters) / len(letters) if letters else 0
    random_looking = bool(letters) and (any(c.isdigit() for c in word) or 0.25 <= upper <= 0.75)
    return "[redacted]" if random_looking else word


def redact(text: str) -> str:
    return _SECRETISH.sub(_hide, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message, traceback and stack before any handler prints it."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string must still be logged
            message = f"{record.msg!r} {record.args!r}"
        record.msg, record.args = redact(message), None
        record.request_id = getattr(record, "request_id", None) or current_request_id() or "-"
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def configure_logging(log_format: str = "text", level: int = logging.INFO, stream=None):
    """The root logger's one handler: JSON or text lines, redacted, with the request id."""
    handler = logging.StreamHandler(stream)
    if log_format == "json":
        handler.setFormatter(JsonFormatter("linking"))
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    return handler

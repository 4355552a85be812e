"""Prometheus metrics of the IdP: the :class:`~idp.ports.Metrics` adapter (its twins are in
:mod:`idp.adapters.metrics_twin`), the
HTTP and database-pool instruments the edges use, and the exposition server.

The collectors are module-level, as ``prometheus_client`` expects: one registry per process,
however many apps a test builds. Under gunicorn every worker is a process of its own, so
``PROMETHEUS_MULTIPROC_DIR`` must be set before this module is imported (deploy/gunicorn.conf.py
does it): each process then writes its samples to files there, and the exposition server (in the
gunicorn master) adds them up — counters and histograms summed, gauges as each declares
(``livesum`` for pool use, ``livemax`` for the outbox backlog). Without the variable (``idp
serve``, ``idp worker``, the tests) the samples live in this process's memory.

Every metric is documented in README.md («Metrics»); deploy/grafana/elk.json charts them.
"""

from __future__ import annotations

import logging
import os
import time

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client import multiprocess as mp

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter(
    "idp_http_requests",
    "HTTP requests answered, by Flask endpoint (not the raw path), method and status.",
    ("endpoint", "method", "status"),
)
HTTP_LATENCY = Histogram(
    "idp_http_request_duration_seconds",
    "Time from the request reaching the app to its response, by endpoint, method and status.",
    ("endpoint", "method", "status"),
    buckets=LATENCY_BUCKETS,
)
SIGN_INS = Counter("idp_sign_ins", "Sign-in attempts by method and result.", ("method", "result"))
LOCKOUTS = Counter("idp_lockouts", "Accounts locked after too many failed sign-ins.")
CODES_SENT = Counter(
    "idp_codes_sent",
    "One-time codes (SMS) and links (e-mail) handed to the gateway or the mail server.",
    ("channel",),
)
DELIVERIES = Counter(
    "idp_outbox_deliveries",
    "Outbox sends by kind (sms, email, logout) and outcome (sent, retry, dead).",
    ("kind", "outcome"),
)
OUTBOX_PENDING = Gauge(
    "idp_outbox_pending",
    "Outbox rows waiting to be sent, by worker lane (messages, logout).",
    ("lane",),
    multiprocess_mode="livemax",
)
OUTBOX_AGE = Gauge(
    "idp_outbox_oldest_pending_age_seconds",
    "Age of the oldest outbox row still waiting, by lane (0 when none): the delivery lag.",
    ("lane",),
    multiprocess_mode="livemax",
)
TOKENS_ISSUED = Counter(
    "idp_tokens_issued", "Token endpoint successes by grant type.", ("grant_type",)
)
POOL_IN_USE = Gauge(
    "idp_db_pool_connections_in_use",
    "Database connections checked out of the pool (all processes).",
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "idp_db_pool_size",
    "Connections the pools keep open (all processes; overflow comes on top).",
    multiprocess_mode="livesum",
)

LINKING_CALLS = Counter(
    "idp_linking_calls",
    "Unary calls from the IdP to the linking service, by method and status code.",
    ("method", "code"),
)
LINKING_LATENCY = Histogram(
    "idp_linking_call_duration_seconds",
    "Time the IdP waited for the linking service, by method and status code.",
    ("method", "code"),
    buckets=LATENCY_BUCKETS,
)

GRANT_TYPES = frozenset(
    {
        "authorization_code",
        "refresh_token",
        "client_credentials",
        "urn:ietf:params:oauth:grant-type:token-exchange",
    }
)


class PrometheusMetrics:
    """The real :class:`~idp.ports.Metrics`."""

    def sign_in(self, method: str, result: str) -> None:
        SIGN_INS.labels(method, result).inc()

    def lockout(self) -> None:
        LOCKOUTS.inc()

    def code_sent(self, channel: str) -> None:
        CODES_SENT.labels(channel).inc()

    def delivery(self, kind: str, outcome: str) -> None:
        DELIVERIES.labels(kind, outcome).inc()

    def outbox_backlog(self, lane: str, pending: int, oldest_age: float) -> None:
        OUTBOX_PENDING.labels(lane).set(pending)
        OUTBOX_AGE.labels(lane).set(oldest_age)

    def token_issued(self, grant_type: str) -> None:
        TOKENS_ISSUED.labels(grant_type if grant_type in GRANT_TYPES else "other").inc()


class ObservedLinkingCalls(grpc.UnaryUnaryClientInterceptor):
    """Counts the IdP's unary calls to the linking service and their latency: the IdP's own
    view of that dependency (an outage shows as ``UNAVAILABLE`` here)."""

    def intercept_unary_unary(self, continuation, client_call_details, request):
        started = time.perf_counter()
        outcome = continuation(client_call_details, request)
        code = outcome.code()  # waits for the call to end; an error is returned, not raised
        name = code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
        labels = (client_call_details.method, name)
        LINKING_CALLS.labels(*labels).inc()
        LINKING_LATENCY.labels(*labels).observe(time.perf_counter() - started)
        return outcome


# (endpoint, method, status) → the counter's and the histogram's children. ``labels()`` takes
# a lock and checks and converts its arguments on every call; the label sets are few (Flask
# endpoints × methods × statuses), so each pair is looked up once per process.
_request_series: dict[tuple[str, str, int], tuple] = {}


def observe_request(endpoint: str, method: str, status: int, seconds: float) -> None:
    key = (endpoint, method, status)
    series = _request_series.get(key)
    if series is None:
        labels = (endpoint, method, str(status))
        series = _request_series[key] = (
            HTTP_REQUESTS.labels(*labels),
            HTTP_LATENCY.labels(*labels),
        )
    series[0].inc()
    series[1].observe(seconds)


def instrument_pool(engine) -> None:
    """Count the engine's checked-out connections and its pool's size (SQLAlchemy pool
    events: ``checkout`` / ``checkin``)."""
    from sqlalchemy import event

    if getattr(engine, "_idp_pool_metrics", False):
        return
    engine._idp_pool_metrics = True
    size = getattr(engine.pool, "size", None)
    if callable(size):
        POOL_SIZE.inc(size())
    event.listen(engine, "checkout", lambda *_: POOL_IN_USE.inc())
    event.listen(engine, "checkin", lambda *_: POOL_IN_USE.dec())


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition_registry() -> CollectorRegistry | None:
    """The registry to serve: every process's files in multiprocess mode, else this
    process's default registry (``None`` tells ``start_http_server`` so)."""
    if multiprocess_dir() is None:
        return None
    registry = CollectorRegistry()
    mp.MultiProcessCollector(registry)
    return registry


_servers: list = []


def serve_metrics(port: int, host: str = "0.0.0.0") -> int:  # noqa: S104 - a pod's own port
    """Serve ``/metrics`` on its own port (never the public one); the port bound."""
    registry = exposition_registry()
    if registry is None:
        server, _thread = start_http_server(port, addr=host)
    else:
        server, _thread = start_http_server(port, addr=host, registry=registry)
    _servers.append(server)
    bound = server.server_address[1]
    log.info("metrics on %s:%s/metrics", host, bound)
    return bound


def close_inherited_servers() -> None:
    """gunicorn's ``post_fork``: a worker does not keep the master's metrics socket open
    (only the master serves it; a copy in a worker would hold the port after the master)."""
    while _servers:
        _servers.pop().socket.close()


def mark_process_dead(pid: int) -> None:
    """gunicorn's ``child_exit``: a dead worker's live gauges stop counting."""
    if multiprocess_dir() is not None:
        mp.mark_process_dead(pid)

"""The twins of :class:`~idp.ports.Metrics`: a recorder for tests and a no-op default for a
service built without metrics. No Prometheus here."""

from __future__ import annotations

import threading
from collections import Counter


class RecordingMetrics:
    """The twin: counts what it was told, by call (``counts[("sign_in", "password",
    "success")]``), and keeps the last backlog per lane."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, ...]] = Counter()
        self.backlog: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def _count(self, *key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def sign_in(self, method: str, result: str) -> None:
        self._count("sign_in", method, result)

    def lockout(self) -> None:
        self._count("lockout")

    def code_sent(self, channel: str) -> None:
        self._count("code_sent", channel)

    def delivery(self, kind: str, outcome: str) -> None:
        self._count("delivery", kind, outcome)

    def outbox_backlog(self, lane: str, pending: int, oldest_age: float) -> None:
        self.backlog[lane] = (pending, oldest_age)

    def token_issued(self, grant_type: str) -> None:
        self._count("token_issued", grant_type)


class NullMetrics(RecordingMetrics):
    """Counts nothing: the default of a service built without metrics."""

    def _count(self, *key: str) -> None:
        pass

    def outbox_backlog(self, lane: str, pending: int, oldest_age: float) -> None:
        pass

"""The database probe behind the gRPC health status: NOT_SERVING while the database does not
answer, SERVING again once it does. A load balancer or the IdP's health-aware channel then
sends no RPC that could only fail. During a drain the health servicer ignores both."""

from __future__ import annotations

import logging
import threading

from grpc_health.v1 import health, health_pb2
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger(__name__)


class DatabaseProbe:
    def __init__(
        self,
        engine: Engine,
        servicer: health.HealthServicer,
        names: tuple[str, ...],
        interval: float,
    ) -> None:
        self._engine = engine
        self._servicer = servicer
        self._names = names
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.serving = True

    def check(self) -> bool:
        try:
            with self._engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            if self.serving:
                # The class only: a driver's message may carry the host and user.
                log.error("database unreachable (%s): health NOT_SERVING", type(exc).__name__)
            return False
        if not self.serving:
            log.info("database answers again: health SERVING")
        return True

    def run_once(self) -> bool:
        self.serving = self.check()
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if self.serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self._names:
            self._servicer.set(name, status)
        return self.serving

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self._interval):
                self.run_once()

        self._thread = threading.Thread(target=loop, name="db-probe", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """No further probes. Not joined: a probe waiting on an unreachable database must not
        delay a drain (the thread is a daemon, and the health servicer ignores it by then)."""
        self._stop.set()

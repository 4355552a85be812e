"""Issue 11: the linking service's bounded concurrency and its health while the database is
down (the probe), besides the drain of test_shutdown.py."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from elk_proto.linking.v1 import linking_pb2 as pb
from linking_service.adapters.sql.db import make_engine, transaction
from linking_service.adapters.sql.models import LinkEventRow
from linking_service.adapters.sql.outbox import append_event
from linking_service.config import ConfigError, load_settings
from linking_service.probe import DatabaseProbe
from tests.processes import wait_until

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def status(servicer: health.HealthServicer, name: str = "") -> int:
    return servicer.Check(health_pb2.HealthCheckRequest(service=name), None).status


def test_the_probe_reports_a_missing_database_and_its_return(tmp_path):
    home = tmp_path / "gone"  # SQLite cannot open a file in a directory that is not there
    engine = make_engine(f"sqlite:///{home / 'linking.sqlite3'}")
    servicer = health.HealthServicer()
    servicer.set("", SERVING)
    probe = DatabaseProbe(engine, servicer, ("", "elk.linking.v1.LinkingService"), 0.05)
    probe.start()
    try:
        wait_until(lambda: status(servicer) == NOT_SERVING, 30, "NOT_SERVING")
        assert status(servicer, "elk.linking.v1.LinkingService") == NOT_SERVING
        home.mkdir()
        wait_until(lambda: status(servicer) == SERVING, 30, "SERVING again")
    finally:
        probe.stop()
        engine.dispose()


def test_a_drain_is_not_undone_by_the_probe(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'linking.sqlite3'}")
    servicer = health.HealthServicer()
    probe = DatabaseProbe(engine, servicer, ("",), 60)
    assert probe.run_once() and status(servicer) == SERVING
    servicer.enter_graceful_shutdown()
    assert probe.run_once()
    assert status(servicer) == NOT_SERVING
    engine.dispose()


def test_concurrent_rpcs_beyond_the_limit_are_refused(make_linking):
    linking = make_linking(LINKING_WORKERS="2", LINKING_MAX_CONCURRENT_RPCS="2")
    with transaction(linking.sessions) as db:
        append_event(db, LinkEventRow.new("attached", "123456789012", "s", None, 1))
    md = linking.auth(linking.service_token("linking:auto"))
    # Event streams stay open (long polls) once they have sent the one event: two hold both
    # slots.
    streams = [
        linking.stub.StreamEvents(pb.StreamEventsRequest(cursor=0), metadata=md, timeout=60)
        for _ in range(2)
    ]
    health_stub = health_pb2_grpc.HealthStub(linking.channel)
    try:
        for stream in streams:
            assert next(stream).account_number == "123456789012"
        with pytest.raises(grpc.RpcError) as info:
            health_stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        for stream in streams:
            stream.cancel()
    wait_until(_answers(health_stub), 30, "a slot to free up")


def _answers(stub):
    def check() -> bool:
        try:
            return (
                stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status == SERVING
            )
        except grpc.RpcError:
            return False

    return check


def test_the_limits_come_from_the_environment():
    base = {"LINKING_DATABASE_URL": "sqlite:///x.sqlite3", "LINKING_SECRET_KEY": "k" * 32}
    settings = load_settings({**base, "LINKING_WORKERS": "8"})
    assert (settings.workers, settings.max_concurrent_rpcs) == (8, 32)
    settings = load_settings({**base, "LINKING_MAX_CONCURRENT_RPCS": "100"})
    assert settings.max_concurrent_rpcs == 100
    with pytest.raises(ConfigError, match="LINKING_MAX_CONCURRENT_RPCS"):
        load_settings({**base, "LINKING_WORKERS": "8", "LINKING_MAX_CONCURRENT_RPCS": "4"})
    with pytest.raises(ConfigError, match="LINKING_DB_PROBE_INTERVAL"):
        load_settings({**base, "LINKING_DB_PROBE_INTERVAL": "0"})

"""Stopping ``linking-service serve``: one drain however many signals come, bounded by the
grace period; a drain that cannot finish is ended by the watchdog."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from linking_service.server import WATCHDOG_MARGIN
from tests.processes import free_port, port_is_free

GRACE = 2
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def environment(tmp_path, port: int) -> dict:
    """A migrated database (``serve`` never migrates) and the server's settings."""
    env = {
        "LINKING_DATABASE_URL": f"sqlite:///{tmp_path / 'linking.sqlite3'}",
        "LINKING_LISTEN": f"127.0.0.1:{port}",
        "LINKING_IDP_ISSUER": "http://127.0.0.1:9",  # never asked: no RPC here needs a token
        "LINKING_SHUTDOWN_GRACE": str(GRACE),
        "LINKING_VAR_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    subprocess.run(
        [sys.executable, "-m", "linking_service.cli", "db", "upgrade"],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    return env


def ready_channel(port: int) -> grpc.Channel:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=30)
    return channel


def test_a_hundred_sigterms_while_draining_change_nothing(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "linking_service.cli", "serve"],
        env=environment(tmp_path, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        channel = ready_channel(port)
        # A call in flight for the whole drain: the health watch stream stays open.
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
        assert next(watch).status == SERVING
        proc.send_signal(signal.SIGTERM)
        assert next(watch).status == NOT_SERVING  # the drain has begun
        for _ in range(99):  # spread over the drain, as a looping shell trap sent them
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.005)
        # Ended by the drain itself (status 0), not by the watchdog (status 1).
        assert proc.wait(timeout=GRACE + WATCHDOG_MARGIN) == 0
        with pytest.raises(grpc.RpcError):
            next(watch)  # cancelled when the grace period ran out
        channel.close()
        output = proc.stdout.read()
        assert output.count("signal 15:") == 1, output  # logged once: the handler only records
        assert "Traceback" not in output
        assert port_is_free(port)
    finally:
        if proc.poll() is None:
            proc.kill()


# The server with a non-daemon thread that never ends, as a handler ignoring cancellation would
# leave behind: without the watchdog the interpreter would wait for it forever at exit.
STUCK = """
import sys, threading
from linking_service.config import load_settings
from linking_service.server import build

from linking_service.shutdown import StopSignal

stop = StopSignal()
server = build(load_settings())
threading.Thread(target=threading.Event().wait, name="stuck").start()
print("ready", flush=True)
server.serve_until_signalled(float(sys.argv[1]), stop)
"""


def test_a_drain_that_cannot_finish_is_ended_after_the_grace_period(tmp_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", STUCK, "1"],
        env=environment(tmp_path, port),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=1 + WATCHDOG_MARGIN + 3) == 1
        assert "drain overran its grace; exiting" in proc.stderr.read()
        assert port_is_free(port)
    finally:
        if proc.poll() is None:
            proc.kill()

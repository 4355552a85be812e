"""Stopping ``idp serve`` and ``idp linking-events`` with signals, as a supervisor does."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from concurrent import futures

import grpc
import requests

from elk_proto.linking.v1 import linking_pb2_grpc
from idp.cli import SERVE_STOP_DEADLINE
from tests.conftest import base_env
from tests.processes import free_port, port_is_free, wait_until

LONG_POLL = 60  # seconds: far longer than any stop may take


def idp(env, *args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "idp.cli", *args],
        env={**env, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_stops_once_however_many_sigterms(databases, tmp_path):
    port = free_port()
    proc = idp(base_env(databases["embedded"], tmp_path), "serve", "--port", str(port))
    try:
        wait_until(lambda: _healthy(f"http://127.0.0.1:{port}/healthz"), 60, "idp serve to answer")
        for _ in range(100):
            proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=SERVE_STOP_DEADLINE) == 0
        assert "Traceback" not in proc.stderr.read()
        assert port_is_free(port)
    finally:
        if proc.poll() is None:
            proc.kill()


def _healthy(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


class HangingEvents(linking_pb2_grpc.LinkingServiceServicer):
    """A linking service whose event stream never sends anything: records when a consumer's
    call arrives and when it ends."""

    def __init__(self) -> None:
        self.called = threading.Event()
        self.ended = threading.Event()

    def StreamEvents(self, request, context):
        context.add_callback(self.ended.set)
        self.called.set()
        self.ended.wait()
        return iter(())


def test_linking_events_cancels_its_long_poll_on_sigterm(databases, tmp_path):
    fake = HangingEvents()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    linking_pb2_grpc.add_LinkingServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    env = {**base_env(databases["embedded"], tmp_path), "IDP_LINKING_TARGET": f"127.0.0.1:{port}"}
    proc = idp(env, "linking-events", "--wait", str(LONG_POLL))
    try:
        assert fake.called.wait(60), proc.stderr.read() if proc.poll() is not None else ""
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=LONG_POLL / 4) == 0
        assert fake.ended.wait(5)  # the call was cancelled, not abandoned
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop(0)


def test_linking_events_stops_while_waiting_to_retry(databases, tmp_path):
    env = {
        **base_env(databases["embedded"], tmp_path),
        "IDP_LINKING_TARGET": f"127.0.0.1:{free_port()}",  # nothing listens there
    }
    proc = idp(env, "linking-events", "--wait", str(LONG_POLL))
    try:
        for line in proc.stderr:
            if "retrying" in line:
                break
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=LONG_POLL / 4) == 0
    finally:
        if proc.poll() is None:
            proc.kill()

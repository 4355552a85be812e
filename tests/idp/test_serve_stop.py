"""Stopping ``idp serve``, gunicorn and ``idp linking-events`` with signals, as a supervisor
or an orchestrator does."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc
import requests

from elk_proto.linking.v1 import linking_pb2_grpc
from idp.cli import SERVE_STOP_DEADLINE
from tests.conftest import base_env
from tests.processes import answers, free_port, port_is_free, wait_until

LONG_POLL = 60  # seconds: far longer than any stop may take
ROOT = Path(__file__).resolve().parents[2]


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


# --- draining: a request in flight at SIGTERM is answered, new connections are not taken ---

BODY = b"grant_type=client_credentials&scope=openid"


def start_slow_request(port: int) -> socket.socket:
    """A POST /token whose body is still on its way: the server has called the app (it
    answered ``100 Continue`` on the way in) and the app waits for the rest of the body."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (
        "POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\nExpect: 100-continue\r\n"
        f"Content-Length: {len(BODY)}\r\n\r\n"
    )
    sock.sendall(head.encode() + BODY[:10])
    interim = b""
    while not interim.endswith(b"\r\n\r\n"):
        interim += sock.recv(1)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n", interim
    return sock


def finish_slow_request(sock: socket.socket) -> bytes:
    sock.sendall(BODY[10:])
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    sock.close()
    return answer


def test_serve_answers_the_request_in_flight_and_refuses_new_ones(databases, tmp_path):
    port = free_port()
    proc = idp(base_env(databases["embedded"], tmp_path), "serve", "--port", str(port))
    try:
        wait_until(lambda: _healthy(f"http://127.0.0.1:{port}/healthz"), 60, "idp serve to answer")
        slow = start_slow_request(port)
        proc.send_signal(signal.SIGTERM)
        wait_until(lambda: not answers(port), SERVE_STOP_DEADLINE, "the listening socket to close")
        assert proc.poll() is None  # still draining
        answer = finish_slow_request(slow)
        # The app's own answer (no client authentication), not a reset connection.
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        assert b"invalid_client" in answer
        assert proc.wait(timeout=SERVE_STOP_DEADLINE) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_gunicorn_answers_the_request_in_flight_then_exits(databases, tmp_path):
    """deploy/gunicorn.conf.py: the gthread worker finishes what it holds within
    IDP_GRACEFUL_TIMEOUT after SIGTERM."""
    port = free_port()
    env = {
        **base_env(databases["embedded"], tmp_path),
        "IDP_BIND": f"127.0.0.1:{port}",
        "IDP_WORKERS": "1",
        "IDP_THREADS": "2",
        "IDP_GRACEFUL_TIMEOUT": "15",
        "PATH": "/usr/bin:/bin",
    }
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(ROOT / "deploy/gunicorn.conf.py"),
            "idp.wsgi:app",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: _healthy(f"http://127.0.0.1:{port}/healthz"), 60, "gunicorn to answer")
        slow = start_slow_request(port)
        proc.send_signal(signal.SIGTERM)
        for line in proc.stderr:
            if "Handling signal: term" in line:
                break
        answer = finish_slow_request(slow)
        assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
        assert proc.wait(timeout=15) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()

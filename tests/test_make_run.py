"""``make run`` as a user, a terminal, ``timeout``, ``docker stop`` or systemd stops it: every
process it started ends, both ports are free, and the status says "stopped", not "crashed".

Each test runs the real ``make run`` on free ports and its own var directory, in a session of
its own. The set-up half (``make setup``: migrations, keys, demo data) runs once per module;
the tests then pass ``-o setup`` so each start costs only the services' own start-up.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import requests
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.processes import alive, descendants, free_port, port_is_free, wait_until

ROOT = Path(__file__).resolve().parents[1]
STOP_DEADLINE = 15  # the supervisor's 10 s before SIGKILL, and some slack for a loaded machine
NAMES = ("linking-service", "linking-events", "worker", "idp", "shop", "tv", "social-fakes")

# make as started from a terminal: SIGINT at its default disposition (a shell that started the
# tests in the background leaves it ignored, and make would then not react to it).
AS_FROM_A_TERMINAL = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)


def make_env() -> dict:
    """The caller's environment without settings that would redirect the services, and
    without the jobserver of a make that runs these tests."""
    drop = ("IDP_", "LINKING_", "MAKE", "MFLAGS")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory):
    var = tmp_path_factory.mktemp("make-run")
    done = subprocess.run(
        ["make", "--no-print-directory", "setup", f"IDP_VAR_DIR={var}"],
        cwd=ROOT,
        env=make_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return var


class MakeRun:
    def __init__(self, var: Path, log: Path) -> None:
        self.idp_port, self.grpc_port = free_port(), free_port()
        self.portal_ports = free_port(), free_port()
        self.social_fakes_port = free_port()
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, "-c", AS_FROM_A_TERMINAL, "make", "--no-print-directory"]
            + ["-o", "setup", "run", f"IDP_PORT={self.idp_port}", f"IDP_VAR_DIR={var}"]
            + [f"LINKING_LISTEN=127.0.0.1:{self.grpc_port}"]
            + [f"SHOP_PORT={self.portal_ports[0]}", f"TV_PORT={self.portal_ports[1]}"]
            + [f"SOCIAL_FAKES_PORT={self.social_fakes_port}"],
            cwd=ROOT,
            env=make_env(),
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text()

    def children(self) -> dict[str, int]:
        return {
            name: int(pid)
            for name, pid in re.findall(r"supervise: started (\S+) \(pid (\d+)\)", self.output())
        }

    def wait_until_serving(self) -> set[int]:
        """Both services answer and every process has started; the whole tree's pids."""
        wait_until(self._idp_answers, 90, "the IdP to answer /healthz")
        wait_until(self._linking_serves, 90, "the linking service to report SERVING")
        wait_until(lambda: set(self.children()) == set(NAMES), 90, "every process to start")
        tree = descendants(self.process.pid)
        assert set(self.children().values()) <= tree
        return tree

    def _idp_answers(self) -> bool:
        assert self.process.poll() is None, self.output()
        try:
            url = f"http://127.0.0.1:{self.idp_port}/healthz"
            return requests.get(url, timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def _linking_serves(self) -> bool:
        with grpc.insecure_channel(f"127.0.0.1:{self.grpc_port}") as channel:
            try:
                answer = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
            except grpc.RpcError:
                return False
        return answer.status == health_pb2.HealthCheckResponse.SERVING

    def kill_leftovers(self) -> None:
        for pid in [self.process.pid, *self.children().values()]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(
    ("signum", "whom"),
    [
        (signal.SIGTERM, "group"),  # docker stop, systemd, kill -TERM -- -PGID
        (signal.SIGINT, "group"),  # Ctrl-C in a terminal
        (signal.SIGTERM, "make"),  # timeout(1), kill PID
    ],
    ids=["sigterm-to-group", "sigint-to-group", "sigterm-to-make"],
)
def test_make_run_stops_everything_it_started(var_dir, tmp_path, signum, whom):
    run = MakeRun(var_dir, tmp_path / "make-run.log")
    try:
        tree = run.wait_until_serving()
        if whom == "group":
            os.killpg(run.process.pid, signum)
        else:
            os.kill(run.process.pid, signum)
        # make ends of the signal it received, after the supervisor stopped everything.
        assert run.process.wait(timeout=STOP_DEADLINE) == -signum, run.output()
        assert not [pid for pid in tree if alive(pid)], run.output()
        assert port_is_free(run.idp_port) and port_is_free(run.grpc_port)
        assert all(port_is_free(port) for port in run.portal_ports)
        assert port_is_free(run.social_fakes_port)
        output = run.output()
        assert "supervise: all stopped" in output
        assert output.count("draining for at most") == 1  # one SIGTERM for the linking service
        assert "***" not in output, "make reported an error"
        assert "Traceback" not in output
    finally:
        run.kill_leftovers()

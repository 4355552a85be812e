"""``scripts/supervise.py`` with small real children that record every SIGTERM they get."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import alive, free_port, wait_until

SUPERVISE = Path(__file__).resolve().parents[2] / "scripts" / "supervise.py"

# argv: NAME MODE [ARG...]. Writes NAME.up (its pid) once its SIGTERM handler is in place and
# one line to NAME.signals per SIGTERM; after the first it lingers 0.5 s as a draining
# service would, so a second SIGTERM would be recorded too.
CHILD = r"""
import os, signal, socket, sys, time
from pathlib import Path

name, mode, *args = sys.argv[1:]
work = Path(os.environ["WORK"])
record = os.open(work / f"{name}.signals", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
signal.signal(signal.SIGTERM, lambda *_: os.write(record, b"TERM\n"))
(work / f"{name}.up").write_text(str(os.getpid()))


def until(condition):
    while not condition():
        time.sleep(0.02)


if mode == "crash":  # exit 3 once the others are up
    until(lambda: all((work / f"{other}.up").exists() for other in args))
    sys.exit(3)
if mode == "listen":  # listen on a port once the file "go" exists
    until(lambda: (work / "go").exists())
    listener = socket.create_server(("127.0.0.1", int(args[0])))
until(lambda: os.path.getsize(work / f"{name}.signals") > 0)
if mode == "ignore":
    until(lambda: False)
time.sleep(0.5)
"""


class Supervisor:
    """The supervisor in a session of its own; children are (name, mode, args, options)."""

    def __init__(self, work: Path, *children: tuple, deadline: float = 5) -> None:
        self.work = work
        child = work / "child.py"
        child.write_text(CHILD)
        specs = [
            f"{name} {options} {sys.executable} {child} {name} {mode} {' '.join(args)}"
            for name, mode, args, options in children
        ]
        self.log = work / "supervise.log"
        self.process = subprocess.Popen(
            [sys.executable, str(SUPERVISE), "--deadline", str(deadline), *specs],
            env={**os.environ, "WORK": str(work)},
            stdout=subprocess.DEVNULL,
            stderr=self.log.open("w"),
            start_new_session=True,
        )

    def pid(self, name: str) -> int:
        up = self.work / f"{name}.up"
        wait_until(lambda: up.exists() and up.read_text(), 20, f"{name} to start")
        return int(up.read_text())

    def signals(self, name: str) -> list[str]:
        return (self.work / f"{name}.signals").read_text().split()

    def output(self) -> str:
        return self.log.read_text()

    def finish(self, timeout: float = 15) -> int:
        try:
            return self.process.wait(timeout=timeout)
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_to_the_group_reaches_each_child_exactly_once(tmp_path, signum):
    sup = Supervisor(tmp_path, ("one", "stay", (), ""), ("two", "stay", (), ""))
    pids = [sup.pid("one"), sup.pid("two")]
    os.killpg(sup.process.pid, signum)  # the supervisor's group, as a terminal or make sends
    assert sup.finish() == 0, sup.output()
    assert sup.signals("one") == sup.signals("two") == ["TERM"]
    assert not any(alive(pid) for pid in pids)
    assert f"{signal.Signals(signum).name} received" in sup.output()
    assert "all stopped" in sup.output()


def test_repeated_signals_to_the_supervisor_still_send_one_sigterm(tmp_path):
    sup = Supervisor(tmp_path, ("one", "stay", (), ""))
    sup.pid("one")
    for _ in range(50):
        sup.process.send_signal(signal.SIGTERM)
    assert sup.finish() == 0, sup.output()
    assert sup.signals("one") == ["TERM"]


def test_a_child_exiting_stops_the_others_and_is_named(tmp_path):
    sup = Supervisor(tmp_path, ("steady", "stay", (), ""), ("flaky", "crash", ("steady",), ""))
    steady = sup.pid("steady")
    assert sup.finish() == 1
    assert "flaky exited with status 3; stopping the others" in sup.output()
    assert sup.output().count("flaky exited") == 1
    assert sup.signals("steady") == ["TERM"]
    assert not alive(steady)


def test_a_child_ignoring_sigterm_is_killed_after_the_deadline(tmp_path):
    sup = Supervisor(
        tmp_path, ("stubborn", "ignore", (), ""), ("polite", "stay", (), ""), deadline=1
    )
    stubborn = sup.pid("stubborn")
    sup.pid("polite")
    sup.process.send_signal(signal.SIGTERM)
    assert sup.finish() == 1
    assert "stubborn did not stop within 1 s; killed" in sup.output()
    assert "polite did not stop" not in sup.output()
    assert sup.signals("stubborn") == ["TERM"]
    wait_until(lambda: not alive(stubborn), 5, "the stubborn child to be gone")


def test_a_process_waiting_for_a_port_starts_once_it_answers(tmp_path):
    port = str(free_port())
    sup = Supervisor(
        tmp_path,
        ("server", "listen", (port,), ""),
        ("client", "stay", (), f"--wait-for 127.0.0.1:{port} GREETING=hello"),
    )
    sup.pid("server")
    # The server runs but does not listen yet: the client must not have been started.
    assert "started server" in sup.output()
    assert "started client" not in sup.output()
    (tmp_path / "go").touch()
    client = sup.pid("client")
    environ = Path(f"/proc/{client}/environ").read_bytes().split(b"\0")
    assert b"GREETING=hello" in environ
    sup.process.send_signal(signal.SIGTERM)
    assert sup.finish() == 0, sup.output()


def test_children_stop_even_when_the_supervisor_is_killed(tmp_path):
    sup = Supervisor(tmp_path, ("orphan", "stay", (), ""))
    orphan = sup.pid("orphan")
    sup.process.kill()
    sup.process.wait()
    wait_until(lambda: not alive(orphan), 10, "the child of a killed supervisor to stop")
    assert sup.signals("orphan") == ["TERM"]


@pytest.mark.parametrize(
    "spec", ["", "NAME=value prog", "--wait-for 1:2 prog", "name --wait-for nowhere prog", "name"]
)
def test_a_bad_spec_is_refused(spec):
    result = subprocess.run(
        [sys.executable, str(SUPERVISE), spec], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2 and "supervise.py: error" in result.stderr

#!/usr/bin/env python3
"""Run long-running processes together, and stop each of them exactly once.

    supervise.py [--deadline SECONDS] [--wait-timeout SECONDS] SPEC [SPEC ...]

Each SPEC is one argument, split like a shell command line:

    NAME [--wait-for HOST:PORT]... [VARIABLE=value]... PROGRAM [ARGUMENT]...

e.g. 'events --wait-for 127.0.0.1:50051 IDP_LINKING_TARGET=127.0.0.1:50051 idp linking-events'.
A process starts at once, or, with --wait-for, as soon as a TCP connection to every address
given succeeds (not after a blind sleep); the VARIABLE=value words are added to its environment.

Stopping. Every process runs in a session (so a process group) of its own: Ctrl-C in the
terminal, or a signal to make's process group, reaches this supervisor but not the children.
On SIGINT, SIGTERM or SIGHUP the supervisor sends one SIGTERM to each child's process group,
waits up to --deadline seconds (default 10) and sends SIGKILL to whatever remains. If a child
exits on its own, the others are stopped the same way. On Linux each child also gets SIGTERM
should the supervisor itself die (even of SIGKILL), so nothing is ever left behind.
The signal handlers only record the signal and write to a pipe; all work happens in the loop.

Exit status: 0 when stopped by a signal and every child ended within the deadline. `make`
prints no error for that and, having received the signal itself, ends with the shell's usual
130 (SIGINT) or 143 (SIGTERM); a non-zero status here would make it print a misleading
"Error". 1 when a child exited on its own, an address never answered, or a child had to be
killed; the message names it. 2 for a bad command line.

Plain Python standard library, no project imports: it runs before and apart from the services.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import os
import select
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
POLL = 0.2  # seconds between checks of --wait-for addresses


def say(message: str) -> None:
    print(f"supervise: {message}", file=sys.stderr, flush=True)


def parse_address(text: str) -> tuple[str, int]:
    """host:port, [v6]:port; a wildcard host (0.0.0.0, [::], empty) is probed on loopback."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--wait-for needs HOST:PORT, got {text!r}")
    host = host.strip("[]")
    if host in ("", "0.0.0.0"):  # noqa: S104 (a listen address to probe, not to bind)
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return host, int(port)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    wait_for: list[tuple[str, int]] = field(default_factory=list)
    process: subprocess.Popen | None = None

    @classmethod
    def parse(cls, spec: str) -> Child:
        words = shlex.split(spec)
        if not words or words[0].startswith("-") or "=" in words[0]:
            raise ValueError(f"a spec starts with a name: {spec!r}")
        child, rest = cls(words[0], []), words[1:]
        while rest and rest[0] == "--wait-for" and len(rest) > 1:
            child.wait_for.append(parse_address(rest[1]))
            rest = rest[2:]
        while rest and "=" in rest[0] and rest[0].split("=", 1)[0].isidentifier():
            variable, value = rest.pop(0).split("=", 1)
            child.env[variable] = value
        if not rest:
            raise ValueError(f"{child.name}: no program to run in {spec!r}")
        child.argv = rest
        return child

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ready(self) -> bool:
        for address in self.wait_for:
            try:
                socket.create_connection(address, timeout=POLL).close()
            except OSError:
                return False
        return True

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 (the commands of the Makefile)
            self.argv,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent(os.getpid()),
        )
        say(f"started {self.name} (pid {self.process.pid})")

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):  # the group is empty already
            os.killpg(self.process.pid, signum)

    def group_alive(self) -> bool:
        """The child, or anything it started in its group, still runs."""
        if self.running:
            return True
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


def die_with_parent(parent: int):
    """Linux: the child gets SIGTERM when the supervisor dies, whatever kills it."""
    name = ctypes.util.find_library("c")
    if not sys.platform.startswith("linux") or not name:
        return None
    prctl = ctypes.CDLL(name, use_errno=True).prctl
    pr_set_pdeathsig = 1

    def in_child() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os._exit(1)

    return in_child


class Wakeup:
    """Self-pipe: signal handlers record the signal and write a byte; the loop selects on it."""

    def __init__(self) -> None:
        self.stop_signal: int | None = None
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._on_stop)
        signal.signal(signal.SIGCHLD, self._on_child)

    def _poke(self) -> None:
        with contextlib.suppress(OSError):  # pipe full: the loop wakes anyway
            os.write(self._write, b"!")

    def _on_stop(self, signum, _frame) -> None:
        if self.stop_signal is None:
            self.stop_signal = signum
        self._poke()

    def _on_child(self, _signum, _frame) -> None:
        self._poke()

    def wait(self, timeout: float | None) -> None:
        select.select([self._read], [], [], timeout)
        try:
            while os.read(self._read, 4096):
                pass
        except BlockingIOError:
            pass


def describe_exit(code: int) -> str:
    if code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def run(children: list[Child], deadline: float, wait_timeout: float, wakeup: Wakeup) -> int:
    problem, failed = None, None
    pending = list(children)
    started = time.monotonic()
    while problem is None and wakeup.stop_signal is None:
        for child in children:
            if child.process is not None and child.process.poll() is not None:
                problem = f"{child.name} {describe_exit(child.process.returncode)}"
                failed = child
                break
        for child in list(pending):
            if problem is not None or wakeup.stop_signal is not None:
                break
            if child.ready():
                pending.remove(child)
                try:
                    child.start()
                except OSError as exc:
                    problem = f"cannot start {child.name}: {exc}"
            elif time.monotonic() - started > wait_timeout:
                where = ", ".join(f"{h}:{p}" for h, p in child.wait_for)
                problem = f"{child.name}: {where} did not answer within {wait_timeout:g} s"
        if problem is None and wakeup.stop_signal is None:
            wakeup.wait(POLL if pending else None)
    if problem is not None:
        say(f"{problem}; stopping the others")
    else:
        running = ", ".join(c.name for c in children if c.process is not None)
        say(f"{signal.Signals(wakeup.stop_signal).name} received; stopping {running}")
    killed = stop(children, deadline, wakeup, failed)
    for child in killed:
        say(f"{child.name} did not stop within {deadline:g} s; killed")
    return 1 if problem is not None or killed else 0


def stop(
    children: list[Child], deadline: float, wakeup: Wakeup, failed: Child | None = None
) -> list[Child]:
    """One SIGTERM to each started child's group; SIGKILL to those left after the deadline.
    Exits other than by that SIGTERM are reported, but for ``failed`` (reported already)."""
    started = [c for c in children if c.process is not None]
    for child in started:
        if child.group_alive():
            child.signal_group(signal.SIGTERM)
    end = time.monotonic() + deadline
    while any(c.group_alive() for c in started) and time.monotonic() < end:
        wakeup.wait(min(0.1, max(0.0, end - time.monotonic())))
    killed = [c for c in started if c.group_alive()]
    for child in killed:
        child.signal_group(signal.SIGKILL)
        child.process.wait()
    for child in started:
        # Dying of the SIGTERM sent (before a handler was in place) is stopping, too.
        quiet = child in killed or child is failed
        if child.process.returncode not in (0, -signal.SIGTERM) and not quiet:
            say(f"{child.name} {describe_exit(child.process.returncode)}")
    return killed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deadline", type=float, default=10.0, help="seconds to stop (10)")
    parser.add_argument(
        "--wait-timeout", type=float, default=60.0, help="seconds for --wait-for (60)"
    )
    parser.add_argument("specs", nargs="+", metavar="SPEC")
    args = parser.parse_args(argv)
    try:
        children = [Child.parse(spec) for spec in args.specs]
    except ValueError as exc:
        parser.error(str(exc))
    names = [c.name for c in children]
    if len(set(names)) != len(names):
        parser.error(f"names must differ: {names}")
    wakeup = Wakeup()
    status = run(children, args.deadline, args.wait_timeout, wakeup)
    # Late signals (make forwards its SIGTERM too) must not kill us while exiting.
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    say("all stopped" if status == 0 else f"all stopped; exit status {status}")
    return status


if __name__ == "__main__":
    sys.exit(main())

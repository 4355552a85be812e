"""Stopping on SIGTERM or SIGINT: a signal handler that only records, and a watchdog.

A Python signal handler runs in the main thread between two bytecodes — possibly in the
middle of a logging call, or while the main thread holds a lock the handler would take — and
runs again for every signal that arrives (a misbehaving supervisor sent hundreds). So the
handler takes no lock, logs nothing and does one non-blocking write to a pipe (the self-pipe
trick); logging and draining happen in ordinary code once ``wait()`` returns. Further signals
while draining change nothing, and the watchdog ends a drain that outlives its grace period.
The linking service has the same module (``linking_service.shutdown``): the two packages share
no code.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time

#: Seconds between two looks at whether a signal arrived (see ``StopSignal.wait``).
POLL = 0.2


class StopSignal:
    """Records the first of SIGTERM/SIGINT; ``wait()`` returns once one has arrived."""

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM, signal.SIGINT)) -> None:
        self.signum: int | None = None
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        for signum in signals:
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, _frame) -> None:
        if self.signum is None:
            self.signum = signum
        with contextlib.suppress(OSError):  # the pipe is full: every waiter is awake already
            os.write(self._write, b"!")

    def is_set(self) -> bool:
        return self.signum is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Block (in any thread) until a signal has arrived; False if ``timeout`` passed first.

        The pipe is never read, so it stays readable and wakes every waiter. The kernel may
        deliver the signal to any thread (one blocked in a request, say); Python then runs the
        handler only when the main thread next executes bytecode, which a main thread asleep
        in ``select`` never does: so it wakes every ``POLL`` seconds to let the handler run."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.signum is None:
            wait = POLL if deadline is None else min(POLL, deadline - time.monotonic())
            if wait <= 0:
                break
            select.select([self._read], [], [], wait)
        return self.signum is not None


def exit_after(seconds: float, message: str, status: int = 1) -> None:
    """End the process ``seconds`` from now, whatever is still running then.

    A daemon thread, so it never delays a clean exit; it outlives a main thread stuck in a
    drain or in the interpreter's join of worker threads (a handler ignoring cancellation)."""

    def watchdog() -> None:
        time.sleep(seconds)
        os.write(2, f"{message}\n".encode())
        os._exit(status)

    threading.Thread(target=watchdog, name="shutdown-watchdog", daemon=True).start()


class InFlight:
    """Counts the requests being answered, so that a stopping server can wait for them
    (``drain``) after it has closed its listening socket."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = threading.Condition()

    @contextlib.contextmanager
    def request(self):
        with self._idle:
            self._count += 1
        try:
            yield
        finally:
            with self._idle:
                self._count -= 1
                self._idle.notify_all()

    def drain(self, timeout: float) -> bool:
        """Wait until no request is in flight; False if ``timeout`` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout)

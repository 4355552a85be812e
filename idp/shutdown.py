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

        The pipe is never read, so it stays readable and wakes every waiter."""
        if self.signum is None:
            select.select([self._read], [], [], timeout)
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
    """WSGI middleware counting the requests being answered, so that a stopping server can
    wait for them (``drain``) after it has closed its listening socket."""

    def __init__(self, app) -> None:
        self.app = app
        self._count = 0
        self._idle = threading.Condition()

    def _done(self) -> None:
        with self._idle:
            self._count -= 1
            self._idle.notify_all()

    def __call__(self, environ, start_response):
        with self._idle:
            self._count += 1
        try:
            body = self.app(environ, start_response)
        except BaseException:
            self._done()
            raise
        return _Closing(body, self._done)

    def drain(self, timeout: float) -> bool:
        """Wait until no request is in flight; False if ``timeout`` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._count == 0, timeout)


class _Closing:
    """A response body that reports once when the server closes it (PEP 3333)."""

    def __init__(self, body, on_close) -> None:
        self._body = body
        self._on_close = on_close
        self._closed = False

    def __iter__(self):
        return iter(self._body)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            if hasattr(self._body, "close"):
                self._body.close()
        finally:
            self._on_close()

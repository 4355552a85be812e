"""A relying party's back-channel logout endpoint (OIDC Back-Channel Logout 1.0 §2.5): a real
HTTP server on a loopback port, in a thread.

``POST /backchannel`` with a form field ``logout_token``: recorded in ``received``, then
answered with the next status of ``script`` (``200`` once the script is spent). ``block()``
holds every request until ``unblock()`` (``held`` counts the waiting ones).
"""

from __future__ import annotations

import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


class RelyingParty:
    def __init__(self, script: tuple[int, ...] = ()) -> None:
        self.received: list[str] = []
        self.held = 0
        self._script = deque(script)
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._open.set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/backchannel"

    def block(self) -> None:
        self._open.clear()

    def unblock(self) -> None:
        self._open.set()

    def _handle(self, body: bytes) -> int:
        if not self._open.is_set():
            with self._lock:
                self.held += 1
            self._open.wait(30)
            with self._lock:
                self.held -= 1
        token = parse_qs(body.decode()).get("logout_token", [""])[0]
        with self._lock:
            self.received.append(token)
            return self._script.popleft() if self._script else 200

    def __enter__(self) -> RelyingParty:
        rp = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args) -> None:
                return None

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                status = rp._handle(self.rfile.read(length))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._open.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

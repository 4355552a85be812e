"""Test support: a live server on a loopback port, a controllable clock, factories, and a
browserless sign-in that walks the real pages over HTTP."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from werkzeug.serving import make_server


class Clock:
    """Wall-clock time plus a manual offset, so expiry is tested without sleeping."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


def wait_for(condition, timeout: float = 15.0, what: str = "the condition"):
    """Poll ``condition`` until it returns something truthy, and return that; fail after
    ``timeout`` seconds. For things that happen outside the test's control (a server's own
    expiry, another process, the outbox worker), so a test waits exactly as long as needed
    instead of sleeping a guessed time."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Live:
    url: str
    app: object
    clock: Clock
    server: object = None
    thread: threading.Thread = None
    notifier: object = None
    store: object = None
    profile: str = ""
    worker: object = None  # the outbox worker beside the server, as `idp worker` runs it
    worker_stop: threading.Event = None
    worker_thread: threading.Thread = None
    worker_policy: object = None

    @property
    def services(self):
        return self.app.extensions["idp.services"]

    def ctx(self):
        return self.app.app_context()

    def start_worker(self, policy=None, poll: float = 0.5) -> None:
        """Run the real outbox worker in a thread (its lanes in threads of their own)."""
        from idp import build_worker

        self.worker = build_worker(self.app, policy=policy, poll=poll)
        self.worker_policy = policy
        self.worker_stop = threading.Event()
        self.worker_thread = threading.Thread(
            target=self.worker.run, args=(self.worker_stop,), daemon=True
        )
        self.worker_thread.start()

    def stop_worker(self) -> None:
        if self.worker_thread is None:
            return
        self.worker_stop.set()
        waker = self.services.outbox.waker
        for lane in ("messages", "logout"):
            waker.wake(lane)
        self.worker_thread.join(15)
        assert not self.worker_thread.is_alive(), "the outbox worker did not stop"
        self.worker_thread = None

    def outbox_rows(self, **where) -> list:
        """Outbox entries (detached snapshots), oldest first, filtered by column values."""
        from sqlalchemy import select

        from idp.adapters.sql.models import OutboxEntry
        from idp.extensions import db

        with self.ctx():
            query = select(OutboxEntry).filter_by(**where).order_by(OutboxEntry.id)
            rows = db.session.scalars(query).all()
            db.session.expunge_all()
            return rows

    def drain(self, timeout: float = 15) -> None:
        """Wait until the worker has handled every queued side effect (none pending)."""
        wait_for(lambda: not self.outbox_rows(state="pending"), timeout, "outbox drained")

    def stop(self) -> None:
        self.stop_worker()
        self.server.shutdown()
        self.thread.join(5)


class LazyApp:
    """A WSGI callable whose app is set after the port is known (the issuer names the port)."""

    def __init__(self) -> None:
        self.app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


def start_server(build) -> Live:
    holder = LazyApp()
    server = make_server("127.0.0.1", 0, holder, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    live = build(url)
    holder.app = live.app
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    live.server, live.thread = server, thread
    return live


# --- factories ------------------------------------------------------------------------------

PASSWORD = "верный-пароль-42"


@dataclass
class ClientInfo:
    client_id: str
    secret: str | None
    redirect_uri: str
    row: object = None
    extra: dict = field(default_factory=dict)


def make_client(live: Live, **kw) -> ClientInfo:
    kw.setdefault("name", "Тестовый портал")
    kw.setdefault("redirect_uris", ["https://rp.example.com/cb"])
    kw.setdefault("first_party", True)
    if kw.get("public"):
        kw.setdefault("grant_types", ["authorization_code", "refresh_token"])
    with live.ctx():
        created = live.services.clients.create(**kw)
        return ClientInfo(
            created.client.client_id,
            created.secret,
            created.client.redirect_uris[0] if created.client.redirect_uris else "",
            created.client,
        )


_counter = iter(range(1_000_000))


def make_user(live: Live, login: str | None = None, password: str = PASSWORD, **kw):
    if login is None:
        login = f"+7999{next(_counter) % 10_000_000:07d}"
    kw.setdefault("family_name", "Петров")
    kw.setdefault("given_name", "Иван")
    with live.ctx():
        user = live.services.users.create(login=login, password=password, **kw)
        return user.id, login


# --- PKCE and the browserless sign-in -------------------------------------------------------


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def authorize_url(live: Live, client: ClientInfo, challenge: str, **params) -> str:
    query = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": "openid profile email phone",
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    query.update(params)
    query = {k: v for k, v in query.items() if v is not None}
    return f"{live.url}/authorize?{urlencode(query)}"


CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "page has no CSRF token"
    return match.group(1)


def follow_local(http: requests.Session, live: Live, response) -> requests.Response:
    """Follow redirects while they stay on the IdP; return the first response leaving it."""
    for _ in range(10):
        if response.status_code not in (301, 302, 303, 307, 308):
            return response
        location = response.headers["Location"]
        if location.startswith("/"):
            location = live.url + location
        if not location.startswith(live.url + "/"):
            return response
        response = http.get(location, allow_redirects=False)
    raise AssertionError("redirect loop")


def submit_login(http, live, page, login, password, remember=False):
    data = {"csrf_token": csrf_of(page.text), "login": login, "password": password}
    match = re.search(r'name="interaction" value="([^"]+)"', page.text)
    if match:
        data["interaction"] = match.group(1)
    if remember:
        data["remember"] = "on"
    return http.post(f"{live.url}/login", data=data, allow_redirects=False)


def sign_in_and_authorize(http, live, url, login, password, consent=True):
    """Drive /authorize through the login (and consent) pages; return the response that
    redirects to the client."""
    response = follow_local(http, live, http.get(url, allow_redirects=False))
    if response.status_code == 200 and 'name="password"' in response.text:
        response = follow_local(http, live, submit_login(http, live, response, login, password))
    if response.status_code == 200 and 'name="decision"' in response.text and consent:
        action = re.search(r'<form method="post" action="([^"]+)"', response.text).group(1)
        response = follow_local(
            http,
            live,
            http.post(
                live.url + action,
                data={"csrf_token": csrf_of(response.text), "decision": "allow"},
                allow_redirects=False,
            ),
        )
    return response


def callback_params(response) -> dict:
    assert response.status_code in (302, 303), (response.status_code, response.text[:300])
    parts = urlsplit(response.headers["Location"])
    return {k: v[0] for k, v in parse_qs(parts.query).items()}

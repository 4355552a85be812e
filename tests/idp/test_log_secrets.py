"""No secret and no personal data in any log line (issues 7 and 11).

The servers run for real as subprocesses whose output is captured: gunicorn with
``deploy/gunicorn.conf.py`` on production's storage (PostgreSQL + Redis), logging JSON lines
as in production, beside a real linking service (JSON lines too) that the IdP calls at
"account confirmed" and from the cabinet; and ``idp serve`` (werkzeug, what ``make run``
starts) on the embedded defaults, logging text. Every flow is driven over HTTP —
registration by phone and by e-mail link, recovery by link and by code, password and contact
change, sign-in through /authorize with ``login_hint``, the code flow with token, refresh,
userinfo, introspection and revocation, logout with ``id_token_hint`` — and then the captured
output is searched for every secret and contact the flows used.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
import requests

from idp import create_app
from idp.adapters.store_memory import MemoryStore
from idp.adapters.store_redis import RedisStore
from idp.config import load_settings
from tests.conftest import REDIS_URL, SECRET, _reset, base_env
from tests.idp.test_registration_flow import last_code, last_link, outbox, post_form, step1
from tests.processes import answers
from tests.support import (
    Clock,
    Live,
    authorize_url,
    callback_params,
    csrf_of,
    make_client,
    make_user,
    pkce_pair,
    sign_in_and_authorize,
    submit_login,
)

ROOT = Path(__file__).resolve().parents[2]
SMS_PASSWORD = "sms-gateway-password-" + secrets.token_hex(8)
SMS_TOKEN = "sms-gateway-token-" + secrets.token_hex(8)
SMTP_PASSWORD = "smtp-password-" + secrets.token_hex(8)
# gunicorn as deployed, on production's storage; werkzeug as `make run` serves, embedded.
SERVERS = {"gunicorn": "pg-redis", "idp-serve": "embedded"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """A server subprocess whose stdout and stderr go to one captured file."""

    def __init__(self, kind: str, env: dict, port: int, log: Path) -> None:
        if kind == "gunicorn":
            args = [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "deploy/gunicorn.conf.py",
                "--no-control-socket",
                "idp.wsgi:app",
            ]
            env = {**env, "IDP_BIND": f"127.0.0.1:{port}", "IDP_WORKERS": "1"}
        elif kind == "worker":  # the outbox worker beside it, as deployed: its logs count too
            args = [sys.executable, "-m", "idp.cli", "worker", "--poll", "0.2"]
        elif kind == "linking":  # the linking service the IdP calls: its logs count too
            args = [sys.executable, "-m", "linking_service.cli", "serve"]
        else:
            args = [sys.executable, "-m", "idp.cli", "serve", "--port", str(port)]
        self.log = log
        self._out = log.open("w")
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT
        )
        self.url = f"http://127.0.0.1:{port}"

    def wait_listening(self, port: int) -> None:
        deadline = time.monotonic() + 60
        while not answers(port):
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, f"not listening:\n{self.log.read_text()}"
            time.sleep(0.1)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if requests.get(f"{self.url}/healthz", timeout=10).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.1)
        raise AssertionError(f"server did not start:\n{self.log.read_text()}")

    companions: tuple[Server, ...] = ()

    def stop(self) -> str:
        """Stop it (and its companions); the output of all."""
        companion = "".join(c.stop() for c in self.companions)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not self._out.closed:
            self._out.close()
        return self.log.read_text(errors="replace") + companion


@pytest.fixture(params=sorted(SERVERS))
def server(request, databases, worker, tmp_path):
    """The server of the parameter on a loopback port, plus an in-process app on the same
    database (factories and the development outbox)."""
    kind = request.param
    url = databases[SERVERS[kind]]
    _reset(url)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(base_env(url, tmp_path))
    env.update(
        IDP_ISSUER=f"http://127.0.0.1:{port}",
        IDP_SMS_GATEWAY_PASSWORD=SMS_PASSWORD,
        IDP_SMS_GATEWAY_TOKEN=SMS_TOKEN,
        IDP_SMTP_PASSWORD=SMTP_PASSWORD,
        IDP_TRUSTED_PROXIES="1",
    )
    prefix = f"idp-logtest:{worker}:"
    linking = None
    if kind == "gunicorn":
        env.update(IDP_REDIS_URL=REDIS_URL, IDP_REDIS_PREFIX=prefix, IDP_LOG_FORMAT="json")
        RedisStore(REDIS_URL, prefix=prefix).clear()
        linking = _start_linking(env, tmp_path)
        env.update(IDP_LINKING_TARGET=linking.target)
    proc = Server(kind, env, port, tmp_path / f"{kind}.log")
    proc.companions = (Server("worker", env, port, tmp_path / f"{kind}-worker.log"),)
    if linking is not None:
        proc.companions += (linking,)
    app = create_app(load_settings(env), store=MemoryStore())
    live = Live(proc.url, app, Clock(), profile=SERVERS[kind])
    try:
        proc.wait_ready()
        yield live, proc
    finally:
        proc.stop()
        with app.app_context():
            from idp.extensions import db

            db.session.remove()
            db.engine.dispose()
        if kind == "gunicorn":
            RedisStore(REDIS_URL, prefix=prefix).clear()


def _start_linking(idp_env: dict, tmp_path: Path) -> Server:
    """``linking-service serve`` (JSON lines) on its own SQLite database, trusting the IdP."""
    port = _free_port()
    env = {k: v for k, v in idp_env.items() if not k.startswith("IDP_")}
    env.update(
        LINKING_DATABASE_URL=f"sqlite:///{tmp_path / 'linking.sqlite3'}",
        LINKING_LISTEN=f"127.0.0.1:{port}",
        LINKING_IDP_ISSUER=idp_env["IDP_ISSUER"],
        LINKING_SECRET_KEY="linking-log-test-secret-0123456789",
        LINKING_LOG_FORMAT="json",
        LINKING_VAR_DIR=str(tmp_path),
        LINKING_METRICS_PORT=str(_free_port()),
    )
    subprocess.run(
        [sys.executable, "-m", "linking_service.cli", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    server = Server("linking", env, port, tmp_path / "linking.log")
    server.wait_listening(port)
    server.target = f"127.0.0.1:{port}"
    server.metrics = f"http://127.0.0.1:{env['LINKING_METRICS_PORT']}/metrics"
    return server


class Browser(requests.Session):
    """A person behind the load balancer (an address of its own, so the captcha policy's
    per-address count stays low) whose session remembers every URL it saw."""

    def __init__(self, seen: list[str]) -> None:
        super().__init__()
        self.headers["X-Forwarded-For"] = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.7"
        self.hooks["response"].append(
            lambda r, *a, **k: seen.extend([r.url, r.headers.get("Location", "")])
        )


def _phone() -> str:
    return f"+7999{secrets.randbelow(10_000_000):07d}"


def _email(tag: str) -> str:
    return f"log.{tag}.{secrets.token_hex(4)}@example.ru"


def drive_every_flow(live: Live, used: list[str]) -> None:
    """Every flow of the IdP over HTTP; each secret and contact it uses goes to ``used``."""
    seen: list[str] = []
    tag = secrets.token_hex(3)
    passwords = [f"Пароль-{tag}-{n}-{secrets.token_hex(4)}" for n in range(8)]
    used += passwords

    # Registration by phone, confirmed by the SMS code.
    http, phone = Browser(seen), _phone()
    assert step1(http, live, phone).status_code == 303
    code = last_code(live, phone)
    assert post_form(http, live, "/register/confirm", code=code).status_code == 303
    assert post_form(http, live, "/register/password", password=passwords[0]).status_code == 303
    used += [phone, code]

    # Registration by e-mail, confirmed by the link (a scanner's GET, a mangled copy, the POST).
    http, email = Browser(seen), _email("reg")
    assert step1(http, live, email).status_code == 303
    link = last_link(live, email)
    assert requests.get(link, timeout=10).status_code == 200
    requests.get(link + "/", timeout=10)
    assert post_form(http, live, link[len(live.url) :]).status_code == 303
    assert post_form(http, live, "/register/password", password=passwords[1]).status_code == 303
    used += [email, link.rsplit("/", 1)[1]]

    # Recovery by link.
    http, email2 = Browser(seen), _email("rec")
    make_user(live, login=email2, password=passwords[2])
    assert post_form(http, live, "/recover", login=email2).status_code == 200
    link = last_link(live, email2)
    assert requests.get(link, timeout=10).status_code == 200
    assert post_form(http, live, link[len(live.url) :]).status_code == 303
    assert post_form(http, live, "/recover/password", password=passwords[3]).status_code == 303
    used += [email2, link.rsplit("/", 1)[1]]

    # Recovery by code.
    http, phone2 = Browser(seen), _phone()
    make_user(live, login=phone2, password=passwords[4])
    assert post_form(http, live, "/recover", login=phone2).status_code == 303
    code = last_code(live, phone2)
    assert post_form(http, live, "/recover/confirm", code=code).status_code == 303
    assert post_form(http, live, "/recover/password", password=passwords[5]).status_code == 303
    used += [phone2, code]

    # Password change, then contact change to an e-mail (link) and to a phone (code).
    http = Browser(seen)
    assert submit_login(http, live, http.get(f"{live.url}/login"), phone2, passwords[5])
    page = http.get(f"{live.url}/account/profile")
    changed = http.post(
        f"{live.url}/account/profile/password",
        data={
            "csrf_token": csrf_of(page.text),
            "current_password": passwords[5],
            "new_password": passwords[6],
        },
        allow_redirects=False,
    )
    assert changed.status_code == 303
    email3, phone3 = _email("new"), _phone()
    for contact in (email3, phone3):
        page = http.get(f"{live.url}/account/profile")
        started = http.post(
            f"{live.url}/account/profile/contact",
            data={
                "csrf_token": csrf_of(page.text),
                "contact": contact,
                "current_password": passwords[6],
            },
            allow_redirects=False,
        )
        assert started.status_code in (200, 303), started.text[:300]
    link = last_link(live, email3)
    assert post_form(http, live, link[len(live.url) :]).status_code == 303
    code = last_code(live, phone3)
    confirmed = post_form(http, live, "/account/profile/contact/confirm", code=code)
    assert confirmed.status_code == 303
    used += [email3, phone3, link.rsplit("/", 1)[1], code]
    assert outbox(live, phone3)  # the code really went through the outbox

    # Sign-in through /authorize with login_hint (a phone, then an e-mail), the code flow,
    # refresh, userinfo (header and query), introspection, revocation, logout.
    client = make_client(
        live,
        scopes=["openid", "profile", "email", "phone", "offline_access"],
        post_logout_redirect_uris=["https://rp.example.com/bye"],
    )
    used.append(client.secret)
    for login, password in ((phone3, passwords[6]), (email2, passwords[3])):
        browser = Browser(seen)
        verifier, challenge = pkce_pair()
        state, nonce = secrets.token_urlsafe(12), secrets.token_urlsafe(12)
        url = authorize_url(
            live,
            client,
            challenge,
            login_hint=login,
            state=state,
            nonce=nonce,
            scope="openid profile email phone offline_access",
        )
        params = callback_params(sign_in_and_authorize(browser, live, url, login, password))
        used += [verifier, state, nonce, params["code"]]
        token = requests.post(
            f"{live.url}/token",
            auth=(client.client_id, client.secret),
            data={
                "grant_type": "authorization_code",
                "code": params["code"],
                "redirect_uri": client.redirect_uri,
                "code_verifier": verifier,
            },
            timeout=10,
        ).json()
        refreshed = requests.post(
            f"{live.url}/token",
            auth=(client.client_id, client.secret),
            data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
            timeout=10,
        ).json()
        for name in ("access_token", "refresh_token", "id_token"):
            used += [token[name], refreshed[name]]
        bearer = {"Authorization": f"Bearer {refreshed['access_token']}"}
        assert requests.get(f"{live.url}/userinfo", headers=bearer, timeout=10).ok
        requests.get(
            f"{live.url}/userinfo", params={"access_token": refreshed["access_token"]}, timeout=10
        )
        introspected = requests.post(
            f"{live.url}/introspect",
            auth=(client.client_id, client.secret),
            data={"token": refreshed["access_token"]},
            timeout=10,
        )
        assert introspected.json()["active"] is True
        revoked = requests.post(
            f"{live.url}/revoke",
            auth=(client.client_id, client.secret),
            data={"token": refreshed["refresh_token"], "token_type_hint": "refresh_token"},
            timeout=10,
        )
        assert revoked.status_code == 200
        logout = browser.get(
            f"{live.url}/logout",
            params={
                "id_token_hint": refreshed["id_token"],
                "post_logout_redirect_uri": "https://rp.example.com/bye",
                "state": state,
            },
            allow_redirects=False,
        )
        assert logout.headers["Location"] == f"https://rp.example.com/bye?state={state}"
        used += [c.value for c in browser.cookies if len(c.value) >= 16]

    # Interaction handles crossed the wire in redirects: bearer secrets too.
    for url in seen:
        used += re.findall(r"/(?:authorize/resume|consent)/([^/?#]+)", url)
        used += re.findall(r"[?&]interaction=([^&#]+)", url)


def _needles(value: str) -> set[str]:
    """The forms a value takes in a log line: as is, URL-encoded, and for a phone its ten
    national digits, for an e-mail its local part."""
    forms = {value, quote(value, safe=""), quote_plus(value)}
    if re.fullmatch(r"\+7\d{10}", value):
        forms.add(value[2:])
    if "@" in value:
        forms.add(value.split("@")[0])
    return forms


def test_no_secret_or_contact_in_any_log_line(server):
    live, proc = server
    used = [SECRET, SMS_PASSWORD, SMS_TOKEN, SMTP_PASSWORD]
    drive_every_flow(live, used)
    if proc.companions[1:]:
        _check_linking_metrics(proc.companions[1].metrics)
    log = proc.stop()

    leaks = sorted(
        value for value in set(used) for needle in _needles(value) if needle and needle in log
    )
    assert not leaks, f"leaked into the log: {leaks}"
    if proc.companions[1:]:
        _check_json_lines(proc, log)
    # The lines are there, with their secrets redacted: logging was not simply off.
    for marker in (
        "/register/confirm",
        "/confirm/[redacted]",
        "/recover/[redacted]",
        "/account/profile/contact/confirm",
        "login_hint=[redacted]",
        "id_token_hint=[redacted]",
        "access_token=[redacted]",
        "/token",
        "/introspect",
        "/revoke",
    ):
        assert marker in log, f"{marker!r} is not in the log:\n{log[-3000:]}"


def _check_json_lines(proc: Server, log: str) -> None:
    """Production's format: every line of the IdP and of the linking service is one JSON
    object; the IdP's request ids reached the linking service in gRPC metadata."""
    idp_lines = [json.loads(x) for x in proc.log.read_text().splitlines() if x.strip()]
    linking_log = proc.companions[1].log.read_text()
    linking_lines = [json.loads(x) for x in linking_log.splitlines() if x.strip().startswith("{")]
    assert idp_lines and linking_lines
    access = [x for x in idp_lines if x["logger"] == "gunicorn.access"]
    assert access and all(x.get("request_id") for x in access), access[:3]
    idp_ids = {x["request_id"] for x in access}
    rpcs = [x for x in linking_lines if x["logger"] == "linking_service.access"]
    assert any("/AutoAttach" in x["message"] for x in rpcs), rpcs
    assert any(x["request_id"] in idp_ids for x in rpcs), (rpcs[:3], sorted(idp_ids)[:3])


def _check_linking_metrics(url: str) -> None:
    """The linking service's own metrics port (LINKING_METRICS_PORT) after those RPCs."""
    from tests.metrics_support import scrape, value

    text = scrape(url)
    auto = "/elk.linking.v1.LinkingService/AutoAttach"
    assert value(text, "linking_grpc_requests_total", method=auto) >= 1
    assert value(text, "linking_jwks_refreshes_total", result="ok") >= 1

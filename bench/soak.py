"""``python -m bench.soak [--seconds N] [--rate R] [--out FILE]`` — `make soak` (issue 10).

The stack of `make bench` (the IdP under deploy/gunicorn.conf.py, its outbox worker, the
linking service, a private Redis, throw-away PostgreSQL databases) under a mixed workload at
a fixed rate from this process: password sign-ins, code flows (SSO session → code → tokens,
each starting a refresh chain), refreshes with rotation, userinfo, linking RPCs (ListAccounts,
and attachments through the wizard's three calls) and registrations by phone whose codes are
read from the development outbox. The resident memory of every server process is sampled
meanwhile. Afterwards it checks that nothing was lost, against the databases themselves:
every refresh token issued is the newest of its chain or rotated (and no family revoked),
every attachment made is recorded exactly once, every registration completed, no 5xx (nor a
gRPC INTERNAL/UNKNOWN/UNAVAILABLE), no failed operation. Exit status 1 when a check fails."""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import queue
import random
import re
import statistics
import sys
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import psycopg
import requests

from bench.scenarios import CSRF, PASSWORD, Fixtures, pkce_pair
from bench.stack import LINKING_AUD, Stack

#: Relative frequency of each operation in the mix.
WEIGHTS = {
    "sign-in": 2,
    "code flow": 2,
    "refresh": 5,
    "userinfo": 5,
    "linking read": 4,
    "attach": 1,
    "registration": 1,
}
THREADS = 16
LINKERS = 8
ACTIVE_CHAINS = 64
REGION = "Пермский край"
ROLES = ("idp", "worker", "linking", "redis")
#: gRPC statuses that are the server's fault (its 5xx).
GRPC_SERVER_ERRORS = {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DATA_LOSS,
}
CODE = re.compile(r"\b(\d{6})\b")
#: Seconds after which a session's kept-alive connections are dropped before its next request.
IDLE = 2.0


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def valid_mobile(e164: str) -> bool:
    import phonenumbers

    number = phonenumbers.parse(e164, None)
    return phonenumbers.is_valid_number(number) and phonenumbers.number_type(number) in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    )


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class Browser(requests.Session):
    """A session that drops its kept-alive connections once unused for ``IDLE`` seconds:
    gunicorn closes an idle one after its ``keepalive`` (5 s), and a request sent on it just
    then is reset by the peer — the client's race, not the server's error, and not one to
    retry blindly (a POST may have been handled). Cookies are kept."""

    def __init__(self) -> None:
        super().__init__()
        self._last = time.monotonic()

    def request(self, *args, **kwargs):
        if time.monotonic() - self._last > IDLE:
            self.close()  # the pools are emptied and made again on demand
        try:
            return super().request(*args, **kwargs)
        finally:
            self._last = time.monotonic()


@dataclass
class Chain:
    """One refresh-token family as this process saw it: the hashes issued, in order."""

    http: requests.Session
    token: str
    issued: list[str] = field(default_factory=list)
    broken: bool = False


@dataclass
class Linker:
    """A person attaching billing accounts: a browser with an SSO session and a token for the
    linking service (scope ``linking``), renewed through a code flow when half-way to expiry."""

    login: str
    subject: str
    http: requests.Session
    channel: grpc.Channel
    stub: object
    token: str = ""
    token_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Soak:
    def __init__(self, stack: Stack, fx: Fixtures, seconds: float, rate: float) -> None:
        from elk_proto.linking.v1 import linking_pb2, linking_pb2_grpc

        self.pb, self.stub_cls = linking_pb2, linking_pb2_grpc.LinkingServiceStub
        self.stack, self.fx, self.seconds, self.rate = stack, fx, seconds, rate
        self.lock = threading.Lock()
        self.ok: Counter = Counter()
        self.failed: Counter = Counter()
        self.first_errors: dict[str, str] = {}
        self.http_5xx: Counter = Counter()
        self.grpc_server_errors: Counter = Counter()
        self.requests = 0
        self.chains: deque[Chain] = deque()
        self.retired: list[Chain] = []
        self.access: deque[str] = deque(maxlen=32)
        self.browsers: deque[requests.Session] = deque()
        self.linkers: list[Linker] = []
        self.accounts: deque[tuple[str, str, str]] = deque()
        self.attached: list[tuple[str, str]] = []  # (account number, subject), answered ATTACHED
        self.unconfirmed: list[str] = []
        self.registered: list[str] = []
        self.started_registrations = 0
        self.counter = itertools.count(1)
        self.behind = 0
        self.seen: dict[str, set[int]] = {}

    # --- plumbing ----------------------------------------------------------------------------

    def session(self) -> requests.Session:
        http = Browser()
        http.hooks["response"].append(self._seen)
        return http

    def _seen(self, response, *args, **kwargs) -> None:
        with self.lock:
            self.requests += 1
            if response.status_code >= 500:
                path = response.request.path_url.split("?", 1)[0]
                self.http_5xx[f"{response.request.method} {path} {response.status_code}"] += 1

    def rpc(self, method, request, metadata, **kw):
        with self.lock:
            self.requests += 1
        try:
            return method(request, metadata=metadata, timeout=20, **kw)
        except grpc.RpcError as error:
            if error.code() in GRPC_SERVER_ERRORS:
                with self.lock:
                    self.grpc_server_errors[f"{error.code().name}"] += 1
            raise

    def code_with_session(self, http: requests.Session, scope: str) -> tuple[str, str]:
        verifier, challenge = pkce_pair()
        url = self.fx.authorize_url(challenge, scope)
        return self.fx.code_from(self.fx.follow(http, http.get(url, allow_redirects=False))), (
            verifier
        )

    # --- set-up (untimed) --------------------------------------------------------------------

    def setup(self) -> None:
        accounts = int(self.seconds * self.rate * WEIGHTS["attach"] / sum(WEIGHTS.values()) * 1.5)
        self._seed_billing(accounts + 50)
        subjects = self._make_users([f"+7997000{i:04d}" for i in range(LINKERS)])
        for login, subject in subjects:
            http = self.session()
            channel = grpc.insecure_channel(self.stack.linking_target)
            linker = Linker(login, subject, http, channel, self.stub_cls(channel))
            self.fx.sign_in(http, pkce_pair()[1], scope="openid", login=login)
            self.linkers.append(linker)
        for _ in range(4):
            http = self.session()
            self.fx.sign_in(http, pkce_pair()[1], scope="openid")
            self.browsers.append(http)
        for _ in range(8):
            self.code_flow()

    def _seed_billing(self, count: int) -> None:
        from argon2 import PasswordHasher

        from linking_service.adapters.sql.db import make_engine, make_sessions
        from linking_service.billing_import import import_records

        records = []
        for n in range(1, count + 1):
            number, login, password = f"1599{n:08d}", f"soak.{n}", f"Soak-{n}-pw"
            records.append(
                {
                    "number": number,
                    "region": REGION,
                    "family_name": "Петров",
                    "given_name": "Иван",
                    "middle_name": None,
                    "phones": [],
                    "emails": [],
                    "status": "active",
                    "services": [{"type": "internet", "login": login, "password": password}],
                }
            )
            self.accounts.append((number, login, password))
        engine = make_engine(self.stack.link_database_url)
        # The proofs' hashes at a low cost: the soak is about what accumulates, not argon2id.
        cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        import_records(enumerate(records, start=1), make_sessions(engine), cheap)
        engine.dispose()

    def _make_users(self, logins: list[str]) -> list[tuple[str, str]]:
        from idp import create_app
        from idp.config import load_settings
        from idp.extensions import db

        app = create_app(load_settings(self.stack.idp_env))
        made = []
        with app.app_context():
            users = app.extensions["idp.services"].users
            for login in logins:
                user = users.create(
                    login=login, password=PASSWORD, family_name="Петров", given_name="Иван"
                )
                made.append((login, str(user.id)))
            db.session.remove()
            db.engine.dispose()
        return made

    # --- the operations ----------------------------------------------------------------------

    def sign_in(self) -> None:
        http = self.session()
        verifier, challenge = pkce_pair()
        code = self.fx.sign_in(http, challenge, scope="openid profile")
        self.access.append(self.fx.exchange(http, code, verifier)["access_token"])

    def code_flow(self) -> None:
        with self.lock:
            http = self.browsers[0]
            self.browsers.rotate()
        code, verifier = self.code_with_session(http, "openid profile offline_access")
        tokens = self.fx.exchange(self.session(), code, verifier)
        self.access.append(tokens["access_token"])
        chain = Chain(self.session(), tokens["refresh_token"])
        chain.issued.append(sha256_hex(chain.token))
        with self.lock:
            self.chains.append(chain)
            while len(self.chains) > ACTIVE_CHAINS:
                self.retired.append(self.chains.popleft())

    def refresh(self) -> None:
        try:
            with self.lock:
                chain = self.chains.popleft()
        except IndexError:
            return self.code_flow()
        try:
            response = chain.http.post(
                f"{self.fx.url}/token",
                auth=self.fx.web,
                data={"grant_type": "refresh_token", "refresh_token": chain.token},
            )
            if response.status_code != 200:
                raise RuntimeError(f"refresh: {response.status_code} {response.text[:200]}")
            tokens = response.json()
        except BaseException:
            chain.broken = True
            with self.lock:
                self.retired.append(chain)
            raise
        chain.token = tokens["refresh_token"]
        chain.issued.append(sha256_hex(chain.token))
        self.access.append(tokens["access_token"])
        with self.lock:
            self.chains.append(chain)

    def userinfo(self) -> None:
        token = self.access[-1]
        response = self.session().get(
            f"{self.fx.url}/userinfo", headers={"Authorization": f"Bearer {token}"}
        )
        if response.status_code != 200 or "sub" not in response.json():
            raise RuntimeError(f"userinfo: {response.status_code} {response.text[:200]}")

    def _linker(self) -> Linker:
        linker = self.linkers[next(self.counter) % len(self.linkers)]
        with linker.lock:
            if time.monotonic() - linker.token_at > 300:  # the access token lives 600 s
                code, verifier = self.code_with_session(linker.http, "openid linking")
                tokens = self.fx.exchange(linker.http, code, verifier, resource=LINKING_AUD)
                linker.token, linker.token_at = tokens["access_token"], time.monotonic()
        return linker

    def linking_read(self) -> None:
        linker = self._linker()
        metadata = (("authorization", f"Bearer {linker.token}"),)
        self.rpc(linker.stub.ListAccounts, self.pb.ListAccountsRequest(), metadata)

    def attach(self) -> None:
        pb = self.pb
        with self.lock:
            number, login, password = self.accounts.popleft()
        linker = self._linker()
        md = (("authorization", f"Bearer {linker.token}"),)
        flow = self.rpc(
            linker.stub.StartAttachment,
            pb.StartAttachmentRequest(
                request_id=uuid.uuid4().hex, region=REGION, account_number=number
            ),
            md,
        )
        flow = self.rpc(
            linker.stub.ChooseService,
            pb.ChooseServiceRequest(
                request_id=uuid.uuid4().hex,
                flow_id=flow.flow_id,
                service_type=pb.SERVICE_TYPE_HOME_INTERNET,
            ),
            md,
        )
        prove = pb.ProveServiceRequest(
            request_id=uuid.uuid4().hex,
            flow_id=flow.flow_id,
            home_internet=pb.HomeInternetProof(login=login, password=password),
        )
        try:
            flow = self.rpc(linker.stub.ProveService, prove, md)
        except grpc.RpcError:
            with self.lock:
                self.unconfirmed.append(number)
            raise
        if flow.state != pb.FLOW_STATE_ATTACHED:
            raise RuntimeError(f"attach {number}: state {pb.FlowState.Name(flow.state)}")
        with self.lock:
            self.attached.append((number, linker.subject))

    def registration(self) -> None:
        # A number range of its own (the number without its last four digits) per sign-up:
        # the SMS pumping guard allows 20 an hour to one range.
        n = next(self.counter)
        while not valid_mobile(phone := f"+79{n % 100000:05d}{n % 10000:04d}"):
            n = next(self.counter)
        http = self.session()
        # A person of their own behind the proxy (IDP_TRUSTED_PROXIES=1): the captcha counts
        # attempts per client address, and thousands of sign-ups from one are a bot.
        http.headers["X-Forwarded-For"] = f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"
        with self.lock:
            self.started_registrations += 1
        page = http.get(f"{self.fx.url}/register")
        data = {
            "csrf_token": CSRF.search(page.text).group(1),
            "family_name": "Соколова",
            "given_name": "Анна",
            "middle_name": "Игоревна",
            "contact": phone,
            "region": REGION,
            "accept": "1",
        }
        response = http.post(f"{self.fx.url}/register", data=data, allow_redirects=False)
        if response.status_code != 303 or not response.headers["Location"].endswith("/confirm"):
            raise RuntimeError(f"register: {response.status_code} {response.text[:200]}")
        code = self._code_from_outbox(phone)
        response = self._post_form(http, "/register/confirm", code=code)
        if response.status_code != 303 or "/register/password" not in response.headers["Location"]:
            raise RuntimeError(f"confirm: {response.status_code} {response.text[:200]}")
        response = self._post_form(http, "/register/password", password=f"Soak-пароль-{n}-ok")
        if response.status_code not in (302, 303):
            raise RuntimeError(f"password: {response.status_code} {response.text[:200]}")
        with self.lock:
            self.registered.append(phone)

    def _post_form(self, http, path, **data):
        page = http.get(f"{self.fx.url}{path}")
        data["csrf_token"] = CSRF.search(page.text).group(1)
        return http.post(f"{self.fx.url}{path}", data=data, allow_redirects=False)

    def _code_from_outbox(self, phone: str) -> str:
        """The SMS as the development sender kept it (outbox_messages), once the outbox
        worker has delivered it."""
        deadline = time.monotonic() + 30
        with psycopg.connect(self.stack.idp_env["IDP_DATABASE_URL"], autocommit=True) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT body FROM outbox_messages WHERE recipient = %s ORDER BY id DESC",
                    (phone,),
                ).fetchone()
                if row:
                    return CODE.search(row[0]).group(1)
                time.sleep(0.2)
        raise RuntimeError(f"no SMS in the outbox for {phone[:6]}… within 30 s")

    # --- the run -----------------------------------------------------------------------------

    def run(self, sample_every: float) -> dict:
        ops = {
            "sign-in": self.sign_in,
            "code flow": self.code_flow,
            "refresh": self.refresh,
            "userinfo": self.userinfo,
            "linking read": self.linking_read,
            "attach": self.attach,
            "registration": self.registration,
        }
        mix = [name for name, weight in WEIGHTS.items() for _ in range(weight)]
        random.Random(10).shuffle(mix)  # noqa: S311 - a fixed order, not a secret
        work: queue.Queue = queue.Queue()
        stop = threading.Event()
        samples: list[tuple[float, dict]] = []
        began = time.monotonic()

        def worker() -> None:
            while True:
                try:
                    name = work.get(timeout=0.2)
                except queue.Empty:
                    if stop.is_set():
                        return
                    continue
                try:
                    ops[name]()
                    with self.lock:
                        self.ok[name] += 1
                except Exception as exc:  # noqa: BLE001 - every failure is counted and shown
                    with self.lock:
                        self.failed[name] += 1
                        self.first_errors.setdefault(name, f"{type(exc).__name__}: {exc}"[:300])

        def sampler() -> None:
            while not stop.is_set():
                samples.append((time.monotonic() - began, self.rss()))
                stop.wait(sample_every)

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(THREADS)]
        threads.append(threading.Thread(target=sampler, daemon=True))
        for thread in threads:
            thread.start()
        tick, due, sent = 1.0 / self.rate, time.monotonic(), 0
        end = began + self.seconds
        while due < end:
            if work.qsize() > 2 * THREADS:
                self.behind += 1  # the servers do not keep up: skipped, and said so
            else:
                work.put(mix[sent % len(mix)])
            sent += 1
            due += tick
            time.sleep(max(0.0, due - time.monotonic()))
        elapsed = time.monotonic() - began
        stop.set()
        for thread in threads:
            thread.join(120)
        samples.append((time.monotonic() - began, self.rss()))
        return {"elapsed": elapsed, "samples": samples}

    def rss(self) -> dict[str, int]:
        """KiB resident per role: the IdP (gunicorn's master and workers), its outbox worker,
        the linking service, Redis, and the PostgreSQL backends of our databases."""
        found = {}
        for role in (*ROLES, "postgres backends"):
            if role == "postgres backends":
                pids = self.stack.pg_backends()
            elif role in self.stack.servers:
                pids = self.stack.pids_of(role)
            else:
                continue
            found[role] = sum(rss_kib(pid) for pid in pids)
            self.seen.setdefault(role, set()).update(pids)
        return found

    # --- afterwards --------------------------------------------------------------------------

    def check_refresh(self) -> dict:
        chains = list(self.chains) + self.retired
        hashes = [h for chain in chains for h in chain.issued]
        with psycopg.connect(self.stack.idp_env["IDP_DATABASE_URL"]) as conn:
            rows = {
                row[0]: row[1:]
                for row in conn.execute(
                    "SELECT refresh_hash, family_id, rotated_at, revoked_at FROM grants "
                    "WHERE refresh_hash = ANY(%s)",
                    (hashes,),
                )
            }
            families = dict(
                conn.execute(
                    "SELECT family_id, count(*) FROM grants WHERE refresh_hash IS NOT NULL "
                    "GROUP BY family_id"
                ).fetchall()
            )
        problems = []
        for chain in chains:
            found = [rows.get(h) for h in chain.issued]
            if any(row is None for row in found):
                problems.append(f"a refresh token issued is not in the database ({chain.issued})")
                continue
            family = {row[0] for row in found}
            if len(family) != 1:
                problems.append(f"one chain in {len(family)} families")
                continue
            if any(row[2] is not None for row in found):
                problems.append(f"family {found[0][0]} revoked")
            if any(row[1] is None for row in found[:-1]):
                problems.append(f"family {found[0][0]}: an older token not rotated")
            if found[-1][1] is not None and not chain.broken:
                problems.append(f"family {found[0][0]}: the newest token rotated")
            if families.get(found[0][0]) != len(chain.issued) and not chain.broken:
                problems.append(
                    f"family {found[0][0]}: {families.get(found[0][0])} tokens in the database, "
                    f"{len(chain.issued)} issued"
                )
        return {
            "ok": not problems and bool(hashes),
            "issued": len(hashes),
            "chains": len(chains),
            "accounted": sum(1 for h in hashes if h in rows),
            "problems": problems[:10],
        }

    def check_attach(self) -> dict:
        numbers = [number for number, _ in self.attached]
        with psycopg.connect(self.stack.link_database_url) as conn:
            holders = dict(
                conn.execute(
                    "SELECT account_number, subject FROM links WHERE account_number = ANY(%s)",
                    (numbers,),
                ).fetchall()
            )
            events = Counter(
                (row[0], row[1], row[2])
                for row in conn.execute(
                    "SELECT account_number, type, subject FROM link_events "
                    "WHERE account_number = ANY(%s)",
                    (numbers + self.unconfirmed,),
                )
            )
        problems = []
        for number, subject in self.attached:
            if holders.get(number) != subject:
                problems.append(f"{number}: held by {holders.get(number)!r}, not {subject}")
            mine = sum(n for key, n in events.items() if key[0] == number)
            if mine != 1 or events[(number, "attached", subject)] != 1:
                problems.append(f"{number}: {mine} events, {events[(number, 'attached', subject)]}")
        return {
            "ok": not problems and bool(numbers),
            "attached": len(numbers),
            "recorded_once": len(numbers) - len({p.split(":")[0] for p in problems}),
            "unconfirmed": len(self.unconfirmed),
            "problems": problems[:10],
        }

    def check_registrations(self) -> dict:
        with psycopg.connect(self.stack.idp_env["IDP_DATABASE_URL"]) as conn:
            users = conn.execute(
                "SELECT count(*) FROM users WHERE phone = ANY(%s) AND phone_verified",
                (self.registered,),
            ).fetchone()[0]
            sms = conn.execute(
                "SELECT count(DISTINCT recipient) FROM outbox_messages WHERE recipient = ANY(%s)",
                (self.registered,),
            ).fetchone()[0]
        done = len(self.registered)
        return {
            "ok": bool(done) and done == self.started_registrations == users == sms,
            "started": self.started_registrations,
            "completed": done,
            "users_in_database": users,
            "codes_from_outbox": sms,
        }


def memory_trend(samples: list[tuple[float, dict]], elapsed: float, seen: dict) -> dict:
    """Median RSS per role over the first and the last minute (a quarter of a short run);
    ``seen``: the processes of each role over the run (more than at the end: restarts, e.g.
    gunicorn's ``max_requests``, which reset what a process had grown)."""
    span = min(60.0, elapsed / 4)
    trend = {}
    roles = sorted({role for _, rss in samples for role in rss})
    for role in roles:
        first = [rss[role] for t, rss in samples if t <= span and role in rss]
        last = [rss[role] for t, rss in samples if t >= elapsed - span and role in rss]
        if not first or not last:
            continue
        a, b = statistics.median(first) / 1024, statistics.median(last) / 1024
        trend[role] = {
            "first_mib": round(a, 1),
            "last_mib": round(b, 1),
            "growth_pct": round((b - a) / a * 100, 1) if a else 0.0,
            "peak_mib": round(max(rss.get(role, 0) for _, rss in samples) / 1024, 1),
            "processes_seen": len(seen.get(role, ())),
        }
    return {"window_s": round(span, 1), "roles": trend}


def report_text(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"soak: {report['elapsed_s']:.0f} s at {report['rate']}/s asked, "
        f"{report['achieved_rps']:.1f} operations/s done ({report['requests']} requests), "
        f"{report['behind']} skipped behind; {m['cpus']} × {m['cpu']}, {m['server']}, "
        f"{m['when']}, commit {m['commit']}",
        "",
        "| operation | ok | failed | first error |",
        "|---|---|---|---|",
    ]
    for name, op in report["operations"].items():
        lines.append(f"| {name} | {op['ok']} | {op['failed']} | {op['first_error']} |")
    window = report["memory"]["window_s"]
    lines += [
        "",
        f"| process | RSS MiB, first {window:.0f} s | RSS MiB, last {window:.0f} s "
        "| growth | peak MiB | processes seen |",
        "|---|---|---|---|---|---|",
    ]
    for role, t in report["memory"]["roles"].items():
        lines.append(
            f"| {role} | {t['first_mib']} | {t['last_mib']} | {t['growth_pct']:+.1f} % "
            f"| {t['peak_mib']} | {t['processes_seen']} |"
        )
    lines.append("")
    for name, check in report["checks"].items():
        detail = ", ".join(f"{k} {v}" for k, v in check.items() if k not in ("ok", "problems"))
        lines.append(f"{'PASS' if check['ok'] else 'FAIL'}  {name}: {detail}")
        lines += [f"      {p}" for p in check.get("problems", [])]
    return "\n".join(lines)


def soak(seconds: float, rate: float, sample_every: float) -> dict:
    from bench.__main__ import machine

    described = {**machine(), "concurrency": THREADS}  # the load average before the run
    stack = Stack()
    try:
        began = time.monotonic()
        stack.up(
            limits=False,
            cold=False,
            worker=True,
            idp_extra={"IDP_TRUSTED_PROXIES": "1"},
            # Every linker attaches far more than a person would in an hour.
            linking_extra={"LINKING_IDENTITY_MAX_FLOWS": "1000000"},
        )
        fx = Fixtures(stack)
        load = Soak(stack, fx, seconds, rate)
        load.setup()
        print(f"  servers up in {time.monotonic() - began:.0f} s", file=sys.stderr, flush=True)
        ran = load.run(sample_every)
        names = list(WEIGHTS)
        operations = {
            name: {
                "ok": load.ok[name],
                "failed": load.failed[name],
                "first_error": load.first_errors.get(name, ""),
            }
            for name in names
        }
        failed = sum(load.failed.values())
        checks = {
            "refresh tokens accounted for": load.check_refresh(),
            "attachments recorded once": load.check_attach(),
            "registrations through the outbox": load.check_registrations(),
            "no 5xx": {
                "ok": not load.http_5xx and not load.grpc_server_errors,
                "http_5xx": sum(load.http_5xx.values()),
                "grpc_server_errors": sum(load.grpc_server_errors.values()),
                "problems": [
                    f"{k}: {n}" for k, n in (load.http_5xx + load.grpc_server_errors).items()
                ],
            },
            "no failed operation": {"ok": failed == 0, "failed": failed},
        }
        report = {
            "machine": described,
            "seconds": seconds,
            "rate": rate,
            "elapsed_s": round(ran["elapsed"], 1),
            "requests": load.requests,
            "achieved_rps": round(sum(load.ok.values()) / ran["elapsed"], 1),
            "behind": load.behind,
            "operations": operations,
            "memory": memory_trend(ran["samples"], ran["elapsed"], load.seen),
            "samples": [{"t": round(t, 1), "rss_kib": rss} for t, rss in ran["samples"]],
            "checks": checks,
            "passed": all(check["ok"] for check in checks.values()),
        }
        report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    except BaseException:
        for server in stack.servers.values():
            print(f"--- {server.name}\n{server.tail(15)}", file=sys.stderr)
        raise
    finally:
        stack.down()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    parser.add_argument("--rate", type=float, default=float(os.environ.get("SOAK_RATE", 40)))
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    parser.add_argument("--out", type=Path, help="write the JSON result here")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rate <= 0 or args.sample <= 0:
        parser.error("--seconds, --rate and --sample must be positive")
    report = soak(args.seconds, args.rate, args.sample)
    print(report_text(report))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
        print(f"\nJSON: {args.out}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())

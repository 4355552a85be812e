"""The servers under test, as real processes: the IdP under ``deploy/gunicorn.conf.py``, the
linking service (twice: keys cached as configured, and a cold key cache), a private Redis, two
throw-away PostgreSQL databases; and the limits' servers (a Flask hello world under the same
gunicorn settings, an empty grpcio service). Everything binds free loopback ports and is
removed afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests

from bench.procs import descendants

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-secret-key-with-enough-length-0123456789abcdef"
LINKING_AUD = "urn:elk:linking-service"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pg_url(database: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + database


@dataclass
class Server:
    """A process we started; ``pids()`` is it and everything below it (gunicorn's workers)."""

    name: str
    proc: subprocess.Popen
    log: Path

    def pids(self) -> set[int]:
        return descendants(self.proc.pid) if self.proc.poll() is None else set()

    def check(self) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited ({self.proc.returncode}):\n{self.tail()}")

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@dataclass
class Stack:
    """Start with :meth:`up`, stop with :meth:`down` (also on failure)."""

    tmp: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="elk-bench-")))
    servers: dict[str, Server] = field(default_factory=dict)
    databases: list[str] = field(default_factory=list)
    redis_url: str = ""
    idp_url: str = ""
    hello_url: str = ""
    linking_target: str = ""
    linking_cold_target: str = ""
    empty_grpc_target: str = ""
    idp_env: dict = field(default_factory=dict)
    link_database_url: str = ""

    # --- processes ---------------------------------------------------------------------------

    @staticmethod
    def _http_server(app: str, port: int) -> list[str]:
        """The production server (deploy/gunicorn.conf.py), or with BENCH_SERVER=granian
        granian's WSGI server with IDP_WORKERS processes of IDP_THREADS blocking threads and
        its access log: for choosing the server by measurement, not a deployment."""
        if os.environ.get("BENCH_SERVER", "gunicorn") == "granian":
            workers = os.environ.get("IDP_WORKERS") or str(os.cpu_count() * 2)
            return [
                sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1",
                "--port", str(port), "--workers", workers,
                "--blocking-threads", os.environ.get("IDP_THREADS", "4"), "--access-log", app,
            ]  # fmt: skip
        return [
            sys.executable, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py",
            "--no-control-socket", app,
        ]  # fmt: skip

    def _spawn(self, name: str, args: list[str], env: dict) -> Server:
        log = self.tmp / f"{name}.log"
        out = log.open("w")
        proc = subprocess.Popen(  # noqa: S603 - our own commands
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        out.close()
        server = Server(name, proc, log)
        self.servers[name] = server
        return server

    def _start(self, args: list[str], env: dict) -> subprocess.Popen:
        return subprocess.Popen(  # noqa: S603 - our own commands
            args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def _finish(self, proc: subprocess.Popen) -> None:
        output, _ = proc.communicate()
        if proc.returncode:
            raise RuntimeError(f"{' '.join(proc.args)} failed:\n{output}")

    def _wait_http(self, server: Server, url: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            server.check()
            try:
                if requests.get(url, timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                time.sleep(0.1)
        raise RuntimeError(f"{server.name} did not answer {url}:\n{server.tail()}")

    def _wait_port(self, server: Server, port: int) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            server.check()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{server.name} did not listen on {port}:\n{server.tail()}")

    def _base_env(self) -> dict:
        # Our own settings only: nothing of the caller's IDP_*/LINKING_* leaks in, but its
        # gunicorn sizing (IDP_WORKERS, IDP_THREADS) is honoured.
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "LINKING_", "BENCH_"))
        }
        for name in ("IDP_WORKERS", "IDP_THREADS"):
            if os.environ.get(name):
                env[name] = os.environ[name]
        env["PYTHONPATH"] = str(ROOT)
        return env

    # --- storage -----------------------------------------------------------------------------

    def _create_databases(self) -> tuple[str, str]:
        tag = f"bench_{os.getpid()}"
        names = (f"{tag}_idp", f"{tag}_link")
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            for name in names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                conn.execute(f'CREATE DATABASE "{name}"')
                self.databases.append(name)
        return names

    def _start_redis(self) -> None:
        """A private redis-server, so that its CPU is ours alone; the shared one otherwise."""
        binary = shutil.which("redis-server")
        if binary is None:
            self.redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
            return
        port = free_port()
        server = self._spawn(
            "redis",
            [
                binary,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.tmp),
            ],
            self._base_env(),
        )
        self._wait_port(server, port)
        self.redis_url = f"redis://127.0.0.1:{port}/0"

    # --- the servers -------------------------------------------------------------------------

    def up(
        self,
        *,
        limits: bool = True,
        cold: bool = True,
        worker: bool = False,
        idp_extra: dict | None = None,
        linking_extra: dict | None = None,
    ) -> Stack:
        """Start everything, in parallel where nothing depends on another. ``cold``: the
        second linking service (cold key cache); ``worker``: the IdP's outbox worker (`idp
        worker`); ``*_extra``: settings added to the IdP's and the linking services' own."""
        idp_db, link_db = self._create_databases()
        self.link_database_url = _pg_url(link_db)
        self._start_redis()
        bin_ = Path(sys.executable).parent
        serve = self._http_server
        waits = []
        if limits:
            hport, gport = free_port(), free_port()
            hello = self._spawn(
                "hello",
                serve("bench.hello:app", hport),
                {**self._base_env(), "IDP_BIND": f"127.0.0.1:{hport}"},
            )
            self.hello_url = f"http://127.0.0.1:{hport}"
            empty = self._spawn(
                "grpc-empty",
                [sys.executable, "-m", "bench.grpc_empty", str(gport), "16"],
                self._base_env(),
            )
            self.empty_grpc_target = f"127.0.0.1:{gport}"
            waits += [lambda: self._wait_http(hello, self.hello_url + "/")]
            waits += [lambda: self._wait_port(empty, gport)]

        port = free_port()
        self.idp_url = f"http://127.0.0.1:{port}"
        self.idp_env = {
            **self._base_env(),
            "IDP_ENV": "development",
            "IDP_ISSUER": self.idp_url,
            "IDP_SECRET_KEY": SECRET,
            "IDP_DATABASE_URL": _pg_url(idp_db),
            "IDP_REDIS_URL": self.redis_url,
            "IDP_REDIS_PREFIX": f"bench{os.getpid()}:",
            "IDP_VAR_DIR": str(self.tmp / "var"),
            "IDP_EXTRA_SCOPES": "linking linking:auto linking:read",
            "IDP_RESOURCES": LINKING_AUD,
            # Codes are made just before the window that exchanges them.
            "IDP_CODE_TTL": "600",
            "IDP_BIND": f"127.0.0.1:{port}",
            **(idp_extra or {}),
        }
        link_env = {
            **self._base_env(),
            "LINKING_DATABASE_URL": _pg_url(link_db),
            "LINKING_IDP_ISSUER": self.idp_url,
            "LINKING_SECRET_KEY": SECRET,
            "LINKING_VAR_DIR": str(self.tmp / "var"),
            "LINKING_REFLECTION": "false",
            "LINKING_SHUTDOWN_GRACE": "1",
            **(linking_extra or {}),
        }
        migrations = [
            self._start([str(bin_ / "idp"), "db", "upgrade"], self.idp_env),
            self._start([str(bin_ / "linking-service"), "db", "upgrade"], link_env),
        ]
        self._finish(migrations[0])
        keys = self._start([str(bin_ / "idp"), "keys", "ensure"], self.idp_env)
        self._finish(migrations[1])
        linking = [("linking", {})]
        if cold:
            # A cold key cache: discovery and the JWKS fetched again every second.
            cache = {"LINKING_JWKS_CACHE_TTL": "1", "LINKING_JWKS_REFRESH_INTERVAL": "1"}
            linking.append(("linking-cold", cache))
        for name, extra in linking:
            lport = free_port()
            env = {**link_env, **extra, "LINKING_LISTEN": f"127.0.0.1:{lport}"}
            server = self._spawn(name, [str(bin_ / "linking-service"), "serve"], env)
            waits.append(lambda server=server, lport=lport: self._wait_port(server, lport))
            target = f"127.0.0.1:{lport}"
            if name == "linking":
                self.linking_target = target
            else:
                self.linking_cold_target = target
        self._finish(keys)
        idp = self._spawn("idp", serve("idp.wsgi:app", port), self.idp_env)
        waits.append(lambda: self._wait_http(idp, self.idp_url + "/healthz"))
        if worker:
            self._spawn("worker", [str(bin_ / "idp"), "worker", "--poll", "0.5"], self.idp_env)
        for wait in waits:
            wait()
        return self

    def down(self) -> None:
        for server in reversed(list(self.servers.values())):
            server.stop()
        if self.databases:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                for name in self.databases:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- what is counted ---------------------------------------------------------------------

    def pg_backends(self) -> set[int]:
        """The PostgreSQL backends serving our databases (not the postmaster, nor the shared
        background writer, WAL writer and checkpointer: other users' work is in them too)."""
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s)", (self.databases,)
            ).fetchall()
        return {row[0] for row in rows}

    def pids_of(self, *names: str) -> set[int]:
        found: set[int] = set()
        for name in names:
            if name in self.servers:
                found |= self.servers[name].pids()
        return found

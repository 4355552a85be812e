"""A Redis, a PostgreSQL and a linking service of the fault tests' own, on free ports, that
the tests may stop, kill and restart: the shared ones (6379, 5432) are never touched.

The PostgreSQL cluster is made with ``initdb`` in a temporary directory and run with
``pg_ctl``; as root, both run as the ``postgres`` user (the server refuses root)."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.processes import answers, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


class OwnRedis:
    """``redis-server`` without persistence on a free port; ``stop()`` ends it (SIGTERM),
    ``start()`` brings it back on the same port, empty."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        if self.binary is None:
            raise RuntimeError("redis-server is not installed (Debian: redis-server)")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="fault-redis-"))
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: answers(self.port), 30, "the test's redis-server to listen")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _pg_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries not found under /usr/lib/postgresql")
    return Path(found[-1]).parent


class OwnPostgres:
    """A throw-away PostgreSQL cluster (trust authentication, database ``faults``) on a free
    port; ``stop()``/``start()``/``restart()`` as an operator or a failover would."""

    def __init__(self) -> None:
        self.bin = _pg_bin()
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="fault-pg-"))
        self.data = self.dir / "data"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self._as_postgres:
            command = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.dir)

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/faults"

    def start(self, create: bool = False) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-w", "-t", "60",
                  "-l", str(self.dir / "log"), "start")  # fmt: skip
        if create:
            self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                      "faults")  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class LinkingProcess:
    """``linking-service serve`` in a process of its own on a fixed free port, so that it can
    be killed and started again where the IdP's channel expects it."""

    SECRET = "fault-linking-secret-key-0123456789abcdef"

    def __init__(self, database_url: str, issuer: str, **env: str) -> None:
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "LINKING_DATABASE_URL": database_url,
            "LINKING_LISTEN": self.target,
            "LINKING_IDP_ISSUER": issuer,
            "LINKING_SECRET_KEY": self.SECRET,
            "LINKING_SHUTDOWN_GRACE": "1",
            "LINKING_DB_PROBE_INTERVAL": "1",
            **env,
        }
        self.proc: subprocess.Popen | None = None
        self.log = Path(tempfile.mkstemp(prefix="fault-linking-", suffix=".log")[1])

    def start(self) -> None:
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "from linking_service.cli import main; main()", "serve"],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_until(self._serving, 60, f"the linking service to serve ({self.log})")

    def _serving(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"linking service exited: {self.log.read_text()[-2000:]}")
        return answers(self.port)

    def kill(self, signum: int = signal.SIGKILL) -> None:
        self.proc.send_signal(signum)
        self.proc.wait(30)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
        self.log.unlink(missing_ok=True)

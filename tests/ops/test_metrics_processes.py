"""Metrics as deployed: gunicorn with two worker processes (prometheus multiprocess mode, the
master serving the sum on IDP_METRICS_PORT, ``child_exit`` dropping a dead worker's live
gauges), and ``idp worker`` exporting its own. Scraped for real after driving traffic."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from idp.adapters.store_redis import RedisStore
from tests.conftest import REDIS_URL, _reset, base_env
from tests.idp.test_registration_flow import step1
from tests.metrics_support import scrape, value
from tests.processes import descendants, free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]


class Proc:
    def __init__(self, args: list[str], env: dict, log: Path) -> None:
        self.log = log
        self._out = log.open("w")
        self.proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT
        )

    def alive(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        return True

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).status_code == 200
    except (requests.ConnectionError, requests.Timeout):  # a worker still booting
        return False


@pytest.fixture
def deployed(databases, worker, tmp_path):
    """gunicorn (2 workers) and ``idp worker`` on PostgreSQL + Redis, each with its own
    metrics port; a stale file in PROMETHEUS_MULTIPROC_DIR from an earlier run."""
    url = databases["pg-redis"]
    _reset(url)
    prefix = f"idp-metrics:{worker}:"
    RedisStore(REDIS_URL, prefix=prefix).clear()
    port, metrics, worker_metrics = free_port(), free_port(), free_port()
    multiproc = tmp_path / "prometheus"
    multiproc.mkdir()
    (multiproc / "counter_1.db").write_bytes(b"left over by a previous run")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "PROMETHEUS_"))}
    env.update(base_env(url, tmp_path))
    env.update(
        IDP_ISSUER=f"http://127.0.0.1:{port}",
        IDP_REDIS_URL=REDIS_URL,
        IDP_REDIS_PREFIX=prefix,
        IDP_BIND=f"127.0.0.1:{port}",
        IDP_WORKERS="2",
        IDP_METRICS_PORT=str(metrics),
    )
    gunicorn = Proc(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "deploy/gunicorn.conf.py",
            "--no-control-socket",
            "idp.wsgi:app",
        ],
        {**env, "PROMETHEUS_MULTIPROC_DIR": str(multiproc)},
        tmp_path / "gunicorn.log",
    )
    outbox = Proc(
        [sys.executable, "-m", "idp.cli", "worker", "--poll", "0.2"],
        {**env, "IDP_METRICS_PORT": str(worker_metrics)},
        tmp_path / "worker.log",
    )
    public = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: gunicorn.alive() and _answers(f"{public}/healthz"), 60, "gunicorn")
        wait_until(
            lambda: outbox.alive() and _answers(f"http://127.0.0.1:{worker_metrics}/metrics"),
            60,
            "idp worker's metrics",
        )
        yield {
            "public": public,
            "metrics": f"http://127.0.0.1:{metrics}/metrics",
            "worker_metrics": f"http://127.0.0.1:{worker_metrics}/metrics",
            "gunicorn": gunicorn,
            "multiproc": multiproc,
        }
    finally:
        outbox.stop()
        gunicorn.stop()
        RedisStore(REDIS_URL, prefix=prefix).clear()


def test_gunicorn_workers_are_summed_and_a_dead_worker_drops_out(deployed):
    assert not (deployed["multiproc"] / "counter_1.db").exists()  # emptied at start
    for _ in range(30):  # a new connection each: both workers take some
        assert requests.get(f"{deployed['public']}/healthz", timeout=10).status_code == 200
    text = scrape(deployed["metrics"])
    healthz = {"endpoint": "health.healthz", "method": "GET", "status": "200"}
    assert value(text, "idp_http_requests_total", **healthz) >= 30  # + the readiness polls
    served = value(text, "idp_http_requests_total", **healthz)
    assert value(text, "idp_http_request_duration_seconds_count", **healthz) == served
    workers = descendants(deployed["gunicorn"].proc.pid)
    assert len(workers) == 2
    pool = value(text, "idp_db_pool_size")
    assert pool > 0 and pool % 2 == 0  # two workers' pools, summed

    # A worker dies; gunicorn starts another. Counters keep what the dead one counted; the
    # live pool gauge counts the live workers only (child_exit marked the dead one).
    victim = sorted(workers)[0]
    os.kill(victim, signal.SIGKILL)
    wait_until(
        lambda: (
            victim not in descendants(deployed["gunicorn"].proc.pid)
            and len(descendants(deployed["gunicorn"].proc.pid)) == 2
            and _answers(f"{deployed['public']}/healthz")
        ),
        60,
        "a replacement worker",
    )

    def settled():
        text = scrape(deployed["metrics"])
        return value(text, "idp_db_pool_size") == pool and text

    text = wait_until(settled, 30, "the pool gauge to count live workers only")
    assert value(text, "idp_http_requests_total", **healthz) >= served

    # The public port serves no metrics.
    assert requests.get(f"{deployed['public']}/metrics", timeout=10).status_code == 404


def test_idp_worker_exports_codes_sent_and_the_outbox_lag(deployed):
    before = scrape(deployed["worker_metrics"])
    assert value(before, "idp_outbox_pending", lane="messages") == 0
    phone = f"+7999{os.getpid() % 10_000_000:07d}"

    class Site:
        url = deployed["public"]

    assert step1(requests.Session(), Site, phone).status_code == 303

    def sent():
        text = scrape(deployed["worker_metrics"])
        return value(text, "idp_codes_sent_total", channel="sms") == 1 and text

    text = wait_until(sent, 30, "the code to be sent")
    assert value(text, "idp_outbox_deliveries_total", kind="sms", outcome="sent") == 1
    assert value(text, "idp_outbox_pending", lane="messages") == 0
    assert value(text, "idp_outbox_oldest_pending_age_seconds", lane="messages") == 0

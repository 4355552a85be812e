"""gunicorn settings for the IdP: `gunicorn -c deploy/gunicorn.conf.py 'idp.wsgi:app'`.

Every worker is an identical, stateless replica: the database and Redis hold all shared
state, so IDP_REDIS_URL is required (load_settings refuses production without it).
"""

import multiprocessing
import os

bind = os.environ.get("IDP_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("IDP_WORKERS", multiprocessing.cpu_count() * 2))
threads = int(os.environ.get("IDP_THREADS", "4"))
worker_class = "gthread"
timeout = 30
# SIGTERM: the master stops accepting, each worker answers the requests it holds for at most
# this long (keep it below the orchestrator's terminationGracePeriodSeconds), then exits.
graceful_timeout = int(os.environ.get("IDP_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
# Each worker touches (os.utime) its heartbeat file on every turn of its loop: on tmpfs that
# is a memory write, on the image's root disk (overlayfs) a filesystem metadata update.
worker_tmp_dir = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None  # noqa: S108 - tmpfs
# A worker is replaced after this many requests (a guard against slow growth). Booting one costs
# about 2 s of CPU (imports and the app), so at 10,000 that was 0.2 ms a request, more than a
# tenth of a discovery request; `make soak` shows the workers' memory flat without it.
max_requests = 50000
max_requests_jitter = 5000
accesslog = "-"
errorlog = "-"
# No secret or personal data in any line (idp/logredact.py): link secrets in paths, every
# query value outside an allowlist (login_hint, state, id_token_hint… are hidden), Referer,
# credentials, e-mail addresses and phone numbers are redacted from the access and error logs,
# and the app's own loggers write through the same filter. Keep it when changing the format.
logger_class = "idp.logging_setup.GunicornLogger"
forwarded_allow_ips = os.environ.get("IDP_FORWARDED_ALLOW_IPS", "127.0.0.1")

# --- metrics -------------------------------------------------------------------------------
# Each worker is a process: prometheus_client writes its samples to files in
# PROMETHEUS_MULTIPROC_DIR (set here, before any worker imports it), and the master serves the
# sum of all of them on IDP_METRICS_PORT (9100 in production; never the public port). A dead
# worker's live gauges are dropped in child_exit. The directory is emptied at start: files of
# a previous run would count twice.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    import tempfile

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="idp-metrics-")
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)


def on_starting(server):
    import glob

    for path in glob.glob(os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], "*.db")):
        os.remove(path)


def when_ready(server):
    from idp.adapters.metrics import serve_metrics
    from idp.config import metrics_port_of

    port = metrics_port_of(os.environ)
    if port is not None:
        serve_metrics(port)


def post_fork(server, worker):
    from idp.adapters.metrics import close_inherited_servers

    close_inherited_servers()


def child_exit(server, worker):
    from idp.adapters.metrics import mark_process_dead

    mark_process_dead(worker.pid)

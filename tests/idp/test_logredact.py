"""The redaction rules on their own (``idp/logredact.py``, ``idp/logging_setup.py``,
``Settings``' repr); ``test_log_secrets.py`` drives every flow against the real servers."""

from __future__ import annotations

import logging
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from idp import create_app
from idp.adapters.store_memory import MemoryStore
from idp.config import load_settings
from idp.logging_setup import RedactedAtoms
from idp.logredact import SAFE_PATH_VARIABLES, RedactingFilter, redact_text
from tests.conftest import SECRET, base_env

ROOT = Path(__file__).resolve().parents[2]
SMS_PASSWORD = "sms-gateway-password-" + secrets.token_hex(8)
SMS_TOKEN = "sms-gateway-token-" + secrets.token_hex(8)
SMTP_PASSWORD = "smtp-password-" + secrets.token_hex(8)


def test_every_route_with_a_path_variable_is_redacted_or_declared_safe(tmp_path):
    """A new route with a secret in its path must not slip past the access log."""
    env = base_env(f"sqlite:///{tmp_path / 'idp.sqlite3'}", tmp_path)
    app = create_app(load_settings(env), store=MemoryStore())
    checked = 0
    for rule in app.url_map.iter_rules():
        secret_args = set(rule.arguments) - SAFE_PATH_VARIABLES
        if not secret_args:
            continue
        token = secrets.token_urlsafe(32)
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: token, rule.rule)
        assert token not in redact_text(f"GET {path} HTTP/1.1"), rule.rule
        checked += 1
    assert checked >= 4  # /recover/, /confirm/, /consent/, /authorize/resume/


@pytest.mark.parametrize(
    "line",
    [
        "GET /authorize?client_id=c&login_hint={s}&state=x HTTP/1.1",
        "GET /logout?id_token_hint={s}&post_logout_redirect_uri=https://rp/bye HTTP/1.1",
        "GET /userinfo?access_token={s} HTTP/1.1",
        "POST /recover/{s} HTTP/1.1",
        "Referer: https://idp.example/confirm/{s}?x=1",
        "GET /recover/{s}/mangled-by-a-mail-client HTTP/1.1",
        "flow for {s} failed",
    ],
)
def test_secrets_are_redacted_from_request_lines_and_text(line):
    secret = secrets.token_urlsafe(32)
    assert secret not in redact_text(line.format(s=secret))
    for contact in ("+79991234567", "%2B79991234567", "anna.petrova@example.ru"):
        redacted = redact_text(line.format(s=contact))
        assert "9991234567" not in redacted and "anna.petrova" not in redacted


def test_route_words_allowlisted_values_and_ids_stay_readable():
    line = "GET /recover/confirm?lang=en&scope=openid+profile&response_type=code HTTP/1.1"
    assert redact_text(line) == line
    sub = "3f2a1b4c-1234-4abc-8def-0123456789ab"
    assert redact_text(f"attachment for {sub} failed") == f"attachment for {sub} failed"
    message_id = "<176468000012.4242.1234567890123456789@lk.rt.ru>"
    assert redact_text(f"e-mail {message_id} handed") == f"e-mail {message_id} handed"


def test_database_errors_do_not_carry_the_rows_values(tmp_path):
    """A failed statement's text (logged with its traceback) names no parameter."""
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from idp.extensions import db

    env = base_env(f"sqlite:///{tmp_path / 'idp.sqlite3'}", tmp_path)
    app = create_app(load_settings(env), store=MemoryStore())
    with app.app_context():
        with pytest.raises(DBAPIError) as failed:
            db.session.execute(text("SELECT * FROM no_such_table WHERE x = :p"), {"p": SMS_TOKEN})
        db.session.rollback()
    assert "no_such_table" in str(failed.value) and SMS_TOKEN not in str(failed.value)


def test_the_filter_redacts_arguments_and_tracebacks():
    token = secrets.token_urlsafe(32)
    try:
        raise ValueError(f"no flow for /confirm/{token}")
    except ValueError:
        record = logging.LogRecord(
            "idp", logging.ERROR, __file__, 1, "on %s", (f"/recover/{token}",), sys.exc_info()
        )
    assert RedactingFilter().filter(record)
    line = logging.Formatter().format(record)
    assert token not in line and "/confirm/[redacted]" in line and "/recover/[redacted]" in line


def test_settings_repr_shows_no_secret(tmp_path):
    env = {
        **base_env("postgresql://idp:db-password-42@db.internal:5432/idp", tmp_path),
        "IDP_REDIS_URL": "redis://:redis-password-42@redis.internal:6379/0",
        "IDP_SMS_GATEWAY_URL": "https://sms.example/send?token=url-token-42",
        "IDP_SMS_GATEWAY_PASSWORD": SMS_PASSWORD,
        "IDP_SMS_GATEWAY_TOKEN": SMS_TOKEN,
        "IDP_SMTP_HOST": "smtp.example",
        "IDP_SMTP_PASSWORD": SMTP_PASSWORD,
    }
    settings = load_settings(env)
    for shown in (repr(settings), str(settings), f"{settings}"):
        for secret in (
            SECRET,
            SMS_PASSWORD,
            SMS_TOKEN,
            SMTP_PASSWORD,
            "db-password-42",
            "redis-password-42",
            "url-token-42",
        ):
            assert secret not in shown
        assert "db.internal:5432/idp" in shown and "smtp_password='***'" in shown


def test_access_log_atoms_an_operator_may_add_are_redacted_too():
    token = secrets.token_urlsafe(32)
    atoms = RedactedAtoms(
        {
            "r": f"GET /confirm/{token}?login_hint=%2B79991234567 HTTP/1.1",
            "q": f"code={token}&state={token}",
            "f": f"https://idp.example/recover/{token}",
            "{authorization}i": f"Bearer {token}",
            "{cookie}i": f"elk_session={token}",
            "{set-cookie}o": f"elk_session={token}; HttpOnly",
            "{location}o": f"https://rp.example/cb?code={token}&state=s",
            "{raw_uri}e": f"/recover/{token}",
            "s": 200,
        }
    )
    fmt = '"%(r)s" %(s)s %(q)s "%(f)s" %({authorization}i)s %({cookie}i)s %({set-cookie}o)s '
    line = (fmt + "%({location}o)s %({raw_uri}e)s %({x-unknown}i)s") % atoms
    assert token not in line and "9991234567" not in line
    assert '"GET /confirm/[redacted]?login_hint=[redacted] HTTP/1.1" 200' in line


GUNICORN_APP_LOGS = """
import logging, sys
from gunicorn.config import Config
from idp.logging_setup import GunicornLogger

GunicornLogger(Config())  # errorlog "-": stderr, as deploy/gunicorn.conf.py has it
from flask import Flask

Flask("idp").logger.error("flask: /recover/%s", sys.argv[1])
logging.getLogger("idp.services.delivery").warning("ours: %s %s", sys.argv[2], sys.argv[3])
logging.getLogger("sqlalchemy.engine").warning("library: %s", sys.argv[1])
try:
    raise RuntimeError("/confirm/" + sys.argv[1])
except RuntimeError:
    logging.getLogger("idp.web.errors").exception("unhandled error")
"""


def test_gunicorn_logger_sends_the_apps_own_loggers_through_the_filter():
    """Flask's logger, ours and a library's reach the error log only redacted (without a root
    handler they would go to Python's last-resort handler or Flask's wsgi.errors stream)."""
    token, phone = secrets.token_urlsafe(32), f"+7999{secrets.randbelow(10_000_000):07d}"
    email = f"log.app.{secrets.token_hex(4)}@example.ru"
    result = subprocess.run(
        [sys.executable, "-c", GUNICORN_APP_LOGS, token, phone, email],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    log = result.stdout + result.stderr
    for marker in ("flask: /recover/[redacted]", "ours: [phone] ***@example.ru", "library:"):
        assert marker in log, log
    assert "RuntimeError: /confirm/[redacted]" in log, log
    for needle in (token, phone[2:], email.split("@")[0]):
        assert needle not in log, log


def test_the_fast_path_changes_nothing_the_full_rules_would_change():
    """redact_text skips the full pattern when a cheap test says it could not match: on
    generated text (secret paths, queries, contacts, long and random words, non-ASCII digits and
    letters mixed in) the answer is always the full pattern's."""
    import random

    from idp.logredact import _PATTERN, _replace

    rng = random.Random(10)
    pieces = [
        "GET ",
        " HTTP/1.1",
        "/recover/",
        "/confirm/",
        "/consent/",
        "/authorize/resume/",
        "/login/social/proof/",
        "/.well-known/openid-configuration",
        "?",
        "&",
        "=",
        "@",
        "%40",
        "%2B",
        "+",
        "79991234567",
        "89161234567",
        "+7999123456",
        "٨٩١٢٣٤٥٦٧٨٩٠",  # Arabic-Indic digits: \d matches them
        "١٢٣٤٥٦٧٨٩",
        "89",
        "анна",
        "openid-configuration",
        "InFailedSqlTransaction",
        "3f2a1b4c-1234-4abc-8def-0123456789ab",
        "a",
        "Z",
        "7",
        "8",
        "9",
        "-",
        "_",
        ".",
        " ",
        '"',
        "/",
    ]
    texts = [secrets.token_urlsafe(rng.randint(10, 40)) for _ in range(200)]
    texts += ["".join(rng.choices(pieces, k=rng.randint(1, 14))) for _ in range(20_000)]
    for text in texts:
        assert redact_text(text) == _PATTERN.sub(_replace, text), text


def test_gunicorn_logger_prints_the_atoms_the_format_names(tmp_path):
    """The access log builds only the atoms its format prints; headers and environ atoms an
    operator adds still come out (redacted), and a credential never does."""
    import datetime
    import types

    from gunicorn.config import Config

    from idp.logging_setup import GunicornLogger

    token = secrets.token_urlsafe(32)
    cfg = Config()
    cfg.set("accesslog", str(tmp_path / "access.log"))
    cfg.set(
        "access_log_format",
        '%(h)s "%(r)s" %(s)s %(b)s "%({User-Agent}i)s" %({x-request-id}o)s '
        "%({raw_uri}e)s %({authorization}i)s %(u)s",
    )
    logger = GunicornLogger(cfg)
    resp = types.SimpleNamespace(
        status="200 OK", sent=12, headers=[("X-Request-Id", "req-1"), ("Content-Length", "12")]
    )
    req = types.SimpleNamespace(
        headers=[("USER-AGENT", "curl/8.0"), ("AUTHORIZATION", f"Bearer {token}")]
    )
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": f"/recover/{token}",
        "PATH_INFO": f"/recover/{token}",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.0.0.1",
        "HTTP_AUTHORIZATION": f"Bearer {token}",
    }
    logger.access(resp, req, environ, datetime.timedelta(milliseconds=3))
    for handler in logger.access_log.handlers:
        handler.flush()
    line = (tmp_path / "access.log").read_text()
    assert (
        '10.0.0.1 "GET /recover/[redacted] HTTP/1.1" 200 12 "curl/8.0" req-1 '
        "/recover/[redacted] [redacted] -"
    ) in line, line
    assert token not in line

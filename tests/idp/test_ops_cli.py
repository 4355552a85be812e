"""``idp audit export``, ``idp support``, ``idp purge`` and ``idp keys rotate
--if-older-than`` as real commands on SQLite and PostgreSQL; ``linking-service purge``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.idp import test_cli
from tests.idp.test_cli import PASSWORD, Cli, clean_env, pg_url, rows, sqlite_url

# The operator CLI's fixtures: a runner on a fresh SQLite file, an own PostgreSQL schema.
sqlite_cli = test_cli.sqlite_cli
pg_schema = test_cli.pg_schema

LINKING = str(Path(sys.executable).parent / "linking-service")


def ops_flow(cli: Cli, url: str) -> None:
    cli("db", "upgrade")
    user = cli.json(
        "users",
        "create",
        "--login",
        "+79994445566",
        "--family-name",
        "Иванов",
        "--given-name",
        "Иван",
        "--password-stdin",
        "--operator",
        "admin",
        stdin=PASSWORD + "\n",
    )
    sub = user["sub"]

    # Key rotation for cron: the first run rotates, the next one finds a young key.
    first = cli.json("keys", "rotate", "--if-older-than", "30d", "--operator", "cron")
    assert first["rotated"] is True and first["kid"]
    assert cli.json("keys", "rotate", "--if-older-than", "30d")["rotated"] is False
    bad = cli("keys", "rotate", "--if-older-than", "soon", check=False)
    assert bad.returncode == 2 and "30d" in bad.stderr

    # The support desk: the operator's name is required, then every action is audited.
    refused = cli("support", "show", "+79994445566", check=False)
    assert refused.returncode == 2 and "--operator" in refused.stderr
    shown = cli.json("support", "--operator", "Ольга", "show", "8 999 444-55-66")
    assert shown["sub"] == sub and shown["sessions"] == []
    assert shown["lockout"] == {"failures": 0, "locked_for_seconds": 0}
    blocked = cli.json("support", "--operator", "Ольга", "block", sub, "--reason", "кража")
    assert blocked["blocked_at"]
    assert rows(url, f"SELECT blocked_at FROM users WHERE id = '{sub}'")[0][0] is not None
    assert (
        cli.json("support", "--operator", "Ольга", "unblock", "+79994445566")["blocked_at"] is None
    )
    ended = cli.json("support", "--operator", "Ольга", "end-sessions", "+79994445566")
    assert ended == {"sub": sub, "sessions_ended": 0}
    missing = cli("support", "--operator", "Ольга", "find", "+79990000000", check=False)
    assert missing.returncode == 1 and "no account" in missing.stderr

    # The audit export: JSON Lines, oldest first, one subject or all.
    events = cli.json_lines("audit", "export", "--since", "2020-01-01", "--subject", "+79994445566")
    assert [e["type"] for e in events] == [
        "account.registered",
        "support.lookup",
        "support.blocked",
        "support.unblocked",
        "support.sessions_ended",
    ]
    assert events[0]["operator"] == "admin"
    assert {e["operator"] for e in events[1:]} == {"Ольга"}
    assert events[2]["details"] == {"reason": "кража"}
    assert all(e["subject"] == sub and e["time"].endswith("Z") for e in events)
    everything = cli.json_lines("audit", "export", "--since", "2020-01-01T00:00:00Z")
    rotated = [e for e in everything if e["type"] == "key.rotated"]
    assert len(rotated) == 1 and rotated[0]["operator"] == "cron"
    assert cli.json_lines("audit", "export", "--since", "2020-01-01", "--until", "2020-01-02") == []
    wrong = cli("audit", "export", "--since", "yesterday", check=False)
    assert wrong.returncode == 2 and "ISO 8601" in wrong.stderr

    # Housekeeping: an old audit event goes, nothing else is due.
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO audit_events (at, event_type, details)"
                " VALUES (1000, 'signin.failure', '{}')"
            )
        )
    engine.dispose()
    purged = cli.json("purge", "--batch", "10")["deleted"]
    assert purged["audit"] == 1 and sum(purged.values()) == 1


def test_ops_commands_on_sqlite(sqlite_cli, tmp_path):
    ops_flow(sqlite_cli, sqlite_url(tmp_path))


def test_ops_commands_on_postgresql(tmp_path, pg_schema):
    url = pg_url(pg_schema)
    ops_flow(Cli(clean_env(tmp_path, url)), url)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_linking_service_purge(tmp_path, pg_schema, kind):
    from linking_service.adapters.sql.db import create_schema, make_engine

    url = sqlite_url(tmp_path) if kind == "sqlite" else pg_url(pg_schema)
    engine = make_engine(url)
    create_schema(engine)
    with engine.begin() as conn:
        for i, created in enumerate((1000, 2_000_000_000)):
            conn.execute(
                sa.text(
                    "INSERT INTO idempotency"
                    " (subject, request_id, method, payload_hash, created_at)"
                    " VALUES ('s', :rid, 'M', 'h', :at)"
                ),
                {"rid": f"r{i}", "at": created},
            )
        for i, ends in enumerate((1000, 1001, 2_000_000_000)):
            conn.execute(
                sa.text(
                    "INSERT INTO attempt_counters (key, count, window_ends_at) VALUES (:k, 1, :e)"
                ),
                {"k": f"k{i}", "e": ends},
            )
    engine.dispose()
    env = {
        **clean_env(tmp_path, url),
        "LINKING_DATABASE_URL": url,
        "LINKING_SECRET_KEY": "linking-test-secret-key-0123456789abcdef",
    }
    result = linking_purge(env, "--batch", "1")
    assert result == {"flows": 0, "idempotency": 1, "attempt_counters": 2}
    assert rows(url, "SELECT request_id FROM idempotency") == [("r1",)]
    assert rows(url, "SELECT key FROM attempt_counters") == [("k2",)]


def linking_purge(env: dict, *args: str) -> dict:
    done = subprocess.run(
        [LINKING, "purge", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])["deleted"]

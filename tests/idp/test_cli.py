"""The ``idp`` console script, run for real as a subprocess (as an operator would)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import PG_URL

IDP = str(Path(sys.executable).parent / "idp")
PASSWORD = "верный-пароль-42"


class Cli:
    def __init__(self, env: dict) -> None:
        self.env = env

    def __call__(self, *args: str, stdin: str | None = None, check: bool = True, **env):
        result = subprocess.run(
            [IDP, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**self.env, **env},
            timeout=60,
        )
        if check:
            assert result.returncode == 0, (args, result.stdout, result.stderr)
        return result

    def json(self, *args: str, **kw) -> dict:
        out = self(*args, **kw).stdout.strip().splitlines()
        return json.loads(out[-1])

    def json_lines(self, *args: str, **kw) -> list[dict]:
        return [json.loads(line) for line in self(*args, **kw).stdout.splitlines() if line]


def clean_env(tmp_path: Path, database_url: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDP_", "AUTHLIB_"))}
    env.update(IDP_VAR_DIR=str(tmp_path), IDP_DATABASE_URL=database_url, PYTHONUTF8="1")
    return env


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.sqlite3'}"


@pytest.fixture
def sqlite_cli(tmp_path) -> Cli:
    return Cli(clean_env(tmp_path, sqlite_url(tmp_path)))


@pytest.fixture
def pg_schema():
    schema = f"cli_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        yield schema
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()


def pg_url(schema: str) -> str:
    return (
        PG_URL.replace("postgresql://", "postgresql+psycopg://")
        + f"?options=-csearch_path%3D{schema}"
    )


def assert_clean_failure(result, *needles: str) -> None:
    assert result.returncode != 0, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout
    for needle in needles:
        assert needle in result.stderr, result.stderr


def rows(database_url: str, query: str) -> list:
    engine = sa.create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query)).all()
    finally:
        engine.dispose()


def operator_flow(cli: Cli, database_url: str, rotate: bool = True) -> None:
    """The setup an operator runs on a fresh database, checking each step's output."""
    assert "up to date" in cli("db", "upgrade").stdout

    created = cli.json("keys", "ensure")["created"]
    assert len(created) == 2

    if rotate:
        assert cli.json("keys", "ensure")["created"] == []  # idempotent
        rotated = cli.json("keys", "rotate", "--alg", "RS256")
        assert rotated["alg"] == "RS256"
        assert rotated["kid"] and rotated["kid"] not in created
        keys = {k["kid"]: k for k in cli.json_lines("keys", "list")}
        assert set(keys) == {*created, rotated["kid"]}
        assert keys[rotated["kid"]]["retired_at"] is None
        (old_rs,) = [k for k in keys.values() if k["alg"] == "RS256" and k["retired_at"]]
        assert old_rs["kid"] in created
        assert old_rs["publish_until"] > old_rs["retired_at"]
        (es,) = [k for k in keys.values() if k["alg"] == "ES256"]
        assert es["retired_at"] is None

    confidential = cli.json(
        "clients",
        "create",
        "--name",
        "Портал",
        "--redirect-uri",
        "https://a.example/cb",
        "--redirect-uri",
        "https://b.example/cb",
        "--scope",
        "openid profile",
    )
    assert confidential["client_id"]
    assert len(confidential["client_secret"]) >= 32
    assert confidential["name"] == "Портал"
    assert confidential["redirect_uris"] == ["https://a.example/cb", "https://b.example/cb"]
    assert confidential["scope"] == "openid profile"
    assert confidential["public"] is False

    public = cli.json(
        "clients",
        "create",
        "--name",
        "SPA",
        "--public",
        "--redirect-uri",
        "https://spa.example/cb",
    )
    assert public["public"] is True
    assert public["token_endpoint_auth_method"] == "none"
    assert "client_secret" not in public

    listed = cli.json_lines("clients", "list")
    by_id = {c["client_id"]: c for c in listed}
    assert set(by_id) == {confidential["client_id"], public["client_id"]}
    assert by_id[confidential["client_id"]]["name"] == "Портал"
    assert all("client_secret" not in c for c in listed)  # shown once, at creation only

    user = cli.json(
        "users",
        "create",
        "--login",
        "8 (999) 123-45-67",
        "--family-name",
        "Иванов",
        "--given-name",
        "Иван",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert user["sub"]
    assert user["phone_number"] == "+79991234567"
    assert user["email"] is None

    # What reached the database: no clear-text secret or password.
    (digest,) = rows(
        database_url,
        f"SELECT secret_digest FROM clients WHERE client_id = '{confidential['client_id']}'",
    )[0]
    assert digest and digest != confidential["client_secret"]
    (pw_hash, family, phone) = rows(
        database_url,
        f"SELECT password_hash, family_name, phone FROM users WHERE id = '{user['sub']}'",
    )[0]
    assert pw_hash.startswith("$argon2id$") and PASSWORD not in pw_hash
    assert (family, phone) == ("Иванов", "+79991234567")

    # A new secret, printed once; only its digest is stored. Then the client is removed.
    rotated = cli.json("clients", "rotate-secret", confidential["client_id"])
    assert rotated["client_id"] == confidential["client_id"]
    assert len(rotated["client_secret"]) >= 32
    assert rotated["client_secret"] != confidential["client_secret"]
    ((new_digest,),) = rows(
        database_url,
        f"SELECT secret_digest FROM clients WHERE client_id = '{confidential['client_id']}'",
    )
    assert new_digest not in (digest, rotated["client_secret"])
    refused = cli("clients", "rotate-secret", public["client_id"], check=False)
    assert refused.returncode != 0 and "no secret" in refused.stderr
    cli("clients", "delete", confidential["client_id"])
    assert [c["client_id"] for c in cli.json_lines("clients", "list")] == [public["client_id"]]
    missing = cli("clients", "delete", confidential["client_id"], check=False)
    assert missing.returncode != 0 and "no such client" in missing.stderr


def test_operator_flow_on_sqlite(sqlite_cli, tmp_path):
    operator_flow(sqlite_cli, sqlite_url(tmp_path))
    # The development secret was generated once, privately, and reused by every command.
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_operator_flow_on_postgresql(tmp_path, pg_schema):
    url = pg_url(pg_schema)
    operator_flow(Cli(clean_env(tmp_path, url)), url, rotate=False)
    tables = {
        r[0]
        for r in rows(
            url,
            f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{pg_schema}'",
        )
    }
    assert {"clients", "users", "signing_keys"} <= tables


def test_errors_exit_non_zero_with_a_clear_message(sqlite_cli):
    cli = sqlite_cli
    cli("db", "upgrade")

    bad = cli(
        "clients",
        "create",
        "--name",
        "Bad",
        "--redirect-uri",
        "http://a.example/cb",
        check=False,
    )
    assert_clean_failure(bad, "http://a.example/cb", "https")
    assert rows(cli.env["IDP_DATABASE_URL"], "SELECT client_id FROM clients") == []

    args = (
        "users",
        "create",
        "--family-name",
        "Иванов",
        "--given-name",
        "Иван",
        "--password-stdin",
    )
    cli(*args, "--login", "+7 999 123-45-67", stdin=PASSWORD + "\n")
    duplicate = cli(*args, "--login", "8 (999) 123-45-67", stdin=PASSWORD + "\n", check=False)
    assert_clean_failure(duplicate, "already exists")

    short = cli(*args, "--login", "user@example.com", stdin="short\n", check=False)
    assert_clean_failure(short, "password")


def test_bad_setting_names_the_variable(sqlite_cli):
    result = sqlite_cli("db", "upgrade", check=False, IDP_ENV="bogus")
    assert_clean_failure(result, "IDP_ENV")
    assert "database is up to date" not in result.stdout

"""Issue 11: the first key of an algorithm signs at once; /readyz names what is down (the
schema behind the code, no key to sign with); the token endpoint answers 503 JSON, never 500,
without a key. On a database of its own (a new SQLite file, or a new PostgreSQL schema), since
the shared ones keep their keys between tests."""

from __future__ import annotations

import logging
import uuid

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from idp import create_app
from idp.adapters.store_memory import MemoryStore
from idp.config import load_settings
from tests.conftest import PG_URL, _pg_url, base_env
from tests.idp.test_cli import Cli, clean_env, sqlite_url
from tests.support import Clock


@pytest.fixture(params=["embedded", "pg-redis"])
def fresh_app(request, tmp_path):
    """An app on an empty database (not migrated) with the in-process store."""
    admin = None
    if request.param == "embedded":
        url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    else:
        schema = f"fresh_{uuid.uuid4().hex[:12]}"
        admin = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
        with admin.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
        url = _pg_url(schema)
    app = create_app(load_settings(base_env(url, tmp_path)), store=MemoryStore(), clock=Clock())
    yield app
    with app.app_context():
        from idp.extensions import db

        db.session.remove()
        db.engine.dispose()
    if admin is not None:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def migrate(app) -> None:
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)


def ready(app):
    response = app.test_client().get("/readyz")
    return response.status_code, response.get_json()


def test_the_first_key_of_an_algorithm_signs_at_once(fresh_app):
    migrate(fresh_app)
    with fresh_app.app_context():
        keys = fresh_app.extensions["idp.services"].keys
        first = keys.rotate("ES256")
        assert keys.signs_in(first) == 0
        token = keys.sign({"sub": "s", "iat": 1}, "ES256")
        assert token.count(".") == 2
        # With a key signing, the next one waits for every cache to see it.
        second = keys.rotate("ES256")
        # (whole seconds, counted from the rotation's own second)
        assert keys.propagation_delay - 1 <= keys.signs_in(second) <= keys.propagation_delay
        assert keys.sign({"sub": "s", "iat": 1}, "ES256")  # the first one still signs


def test_readiness_names_the_schema_then_the_keys(fresh_app):
    status, body = ready(fresh_app)
    assert status == 503 and body["down"] == ["migrations"]
    assert "idp db upgrade" in body["detail"]["migrations"]

    migrate(fresh_app)
    status, body = ready(fresh_app)
    assert status == 503 and body["down"] == ["keys"]
    assert "idp keys rotate --alg ES256" in body["detail"]["keys"]

    with fresh_app.app_context():
        fresh_app.extensions["idp.services"].keys.rotate("ES256")
    status, body = ready(fresh_app)
    assert status == 503 and body["down"] == ["keys"]
    assert "RS256" in body["detail"]["keys"] and "ES256" not in body["detail"]["keys"]

    with fresh_app.app_context():
        fresh_app.extensions["idp.services"].keys.rotate("RS256")
    assert ready(fresh_app) == (200, {"status": "ok", "down": []})


def test_a_key_made_by_another_process_is_seen_at_once(fresh_app, tmp_path):
    """`idp keys rotate` runs in its own process; the serving one must not wait for its
    key cache to expire before it signs and reports ready."""
    migrate(fresh_app)
    assert ready(fresh_app)[1]["down"] == ["keys"]  # the cache now holds "no key"
    url = fresh_app.extensions["idp.settings"].database_url
    other = create_app(load_settings(base_env(url, tmp_path)), store=MemoryStore())
    with other.app_context():
        other.extensions["idp.services"].keys.ensure_keys()
    assert ready(fresh_app)[0] == 200
    with other.app_context():
        from idp.extensions import db

        db.session.remove()


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_the_token_endpoint_answers_503_without_a_key(fresh_app):
    migrate(fresh_app)
    with fresh_app.app_context():
        created = fresh_app.extensions["idp.services"].clients.create(
            name="Сервис",
            redirect_uris=[],
            grant_types=["client_credentials"],
            scopes=["linking:auto"],
            first_party=True,
        )
    # Alembic's logging file config (the migration above) replaced the root's handlers.
    logger = logging.getLogger("idp.web.errors")
    logger.disabled = False
    captured = Lines()
    logger.addHandler(captured)
    response = fresh_app.test_client().post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "linking:auto"},
        auth=(created.client.client_id, created.secret),
    )
    assert response.status_code == 503
    assert response.get_json()["error"] == "server_error"
    assert response.headers["Retry-After"]
    logger.removeHandler(captured)
    assert any("idp keys rotate --alg ES256" in line for line in captured.lines)
    assert not any("Traceback" in line for line in captured.lines)

    with fresh_app.app_context():
        fresh_app.extensions["idp.services"].keys.rotate("ES256")
    again = fresh_app.test_client().post(
        "/token",
        data={"grant_type": "client_credentials", "scope": "linking:auto"},
        auth=(created.client.client_id, created.secret),
    )
    assert again.status_code == 200, again.get_data(as_text=True)


def test_keys_rotate_on_a_fresh_database_signs_at_once(tmp_path):
    """The issue's report, as an operator types it: a fresh database, `idp keys rotate`."""
    sqlite_cli = Cli(clean_env(tmp_path, sqlite_url(tmp_path)))
    sqlite_cli("db", "upgrade")
    first = sqlite_cli.json("keys", "rotate", "--alg", "ES256")
    assert first["signs_in_seconds"] == 0
    second = sqlite_cli.json("keys", "rotate", "--alg", "ES256")
    assert second["signs_in_seconds"] > 0 and second["kid"] != first["kid"]

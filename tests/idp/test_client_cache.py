"""Per-process caches across replicas (issue 10): two IdP apps, each with its own caches,
share one database and one ephemeral store (SQLite + an in-process store, and PostgreSQL +
Redis). A client's secret rotated or the client deleted on one is refused by the other within
the documented bound (ClientService.cache_check, 1 s); a new signing key is published by both
and then signs on both. The shared clock is moved instead of sleeping."""

from __future__ import annotations

import base64
import json

import pytest

from idp import create_app
from idp.adapters.store_memory import MemoryStore
from idp.adapters.store_redis import RedisStore
from idp.config import load_settings
from tests.conftest import REDIS_URL, _reset, base_env
from tests.support import Clock

BOUND = 1.0  # ClientService's cache_check


@pytest.fixture
def replicas(profile, databases, worker, tmp_path):
    url = databases[profile]
    _reset(url)
    clock = Clock()
    if profile == "pg-redis":
        store = RedisStore(REDIS_URL, prefix=f"idp-test:{worker}:replicas:")
    else:
        store = MemoryStore(clock=clock)
    store.clear()
    apps = [
        create_app(load_settings(base_env(url, tmp_path)), store=store, clock=clock)
        for _ in range(2)
    ]
    yield apps, clock
    for app in apps:
        with app.app_context():
            from idp.extensions import db

            db.session.remove()
            db.engine.dispose()
    store.clear()


def _service_client(app):
    with app.app_context():
        created = app.extensions["idp.services"].clients.create(
            name="Сервис", grant_types=["client_credentials"], scopes=["linking:read"]
        )
        return created.client.client_id, created.secret


def _token(app, client_id, secret):
    basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return app.test_client().post(
        "/token",
        headers={"Authorization": f"Basic {basic}"},
        data={"grant_type": "client_credentials", "scope": "linking:read"},
    )


def _kid(response) -> str:
    token = response.get_json()["access_token"]
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


def test_a_rotated_secret_is_refused_by_the_other_replica_within_the_bound(replicas):
    (a, b), clock = replicas
    client_id, old = _service_client(a)
    assert _token(b, client_id, old).status_code == 200  # b now holds the client in its cache
    with a.app_context():
        new = a.extensions["idp.services"].clients.rotate_secret(client_id)
    assert _token(a, client_id, old).status_code == 401  # the replica that changed it: at once
    assert _token(a, client_id, new).status_code == 200
    clock.advance(BOUND)
    assert _token(b, client_id, old).status_code == 401
    assert _token(b, client_id, new).status_code == 200


def test_a_deleted_client_is_refused_by_the_other_replica_within_the_bound(replicas):
    (a, b), clock = replicas
    client_id, secret = _service_client(a)
    assert _token(b, client_id, secret).status_code == 200
    with a.app_context():
        a.extensions["idp.services"].clients.delete(client_id)
    assert _token(a, client_id, secret).status_code == 401
    clock.advance(BOUND)
    assert _token(b, client_id, secret).status_code == 401


def test_the_cache_answers_without_the_database_between_changes(replicas):
    """What the cache is for: a known client is read once, not on every token request."""
    (a, _), _ = replicas
    client_id, secret = _service_client(a)
    assert _token(a, client_id, secret).status_code == 200
    with a.app_context():
        from sqlalchemy import event

        from idp.extensions import db

        statements: list[str] = []

        def record(conn, cursor, statement, *args):
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            assert _token(a, client_id, secret).status_code == 200
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
    assert not [s for s in statements if "FROM clients" in s]


def test_a_new_signing_key_is_published_and_used_by_both_replicas(replicas):
    """An immediate rotation on one replica: it signs with the new key at once, and the other
    publishes and signs with it once its key cache (KeyService, 30 s) turns over. (Immediate,
    so the key table shared with the other tests keeps one key per algorithm signing now.)"""
    (a, b), clock = replicas
    client_id, secret = _service_client(a)
    before = {_kid(_token(app, client_id, secret)) for app in (a, b)}
    assert len(before) == 1
    with a.app_context():
        new_kid = a.extensions["idp.services"].keys.rotate("ES256", activate_in=0)
    assert _kid(_token(a, client_id, secret)) == new_kid
    clock.advance(31)
    for app in (a, b):
        published = {k["kid"] for k in app.test_client().get("/jwks.json").get_json()["keys"]}
        assert {new_kid, *before} <= published  # the old key stays published for its tokens
        assert _kid(_token(app, client_id, secret)) == new_kid

"""Liveness and readiness probes."""

from __future__ import annotations

import requests

from idp import create_app
from idp.adapters.store_redis import RedisStore
from idp.config import load_settings
from tests.conftest import base_env


def test_ready_when_database_and_store_answer(live):
    assert requests.get(f"{live.url}/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(f"{live.url}/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json()["down"] == []


def test_not_ready_while_the_store_is_down(tmp_path):
    env = base_env(f"sqlite:///{tmp_path / 'idp.sqlite3'}", tmp_path)
    app = create_app(load_settings(env), store=RedisStore("redis://127.0.0.1:1/0", timeout=0.2))
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    # SQLite answers even without tables; the store is down and the schema not migrated.
    assert response.get_json()["down"] == ["migrations", "store"]

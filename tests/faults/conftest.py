"""Fixtures of the fault tests: a Redis and a PostgreSQL of their own per module (see
``servers``), and an IdP served on a loopback port over whichever of them a test breaks."""

from __future__ import annotations

import pytest

from idp import create_app
from idp.adapters.logout_http import RecordingLogoutNotifier
from idp.adapters.wake import LocalWaker
from idp.config import load_settings
from tests.conftest import TEST_RETRY, _migrate, base_env
from tests.faults.servers import OwnPostgres, OwnRedis
from tests.support import Clock, Live, start_server


@pytest.fixture(scope="module")
def own_redis():
    server = OwnRedis()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def own_postgres():
    server = OwnPostgres()
    server.start(create=True)
    yield server
    server.close()


@pytest.fixture
def start_idp(tmp_path):
    """``start_idp(database_url, store, linking=None, **env)``: a migrated database with
    keys, an IdP on a free port and the outbox worker beside it."""
    started: list[Live] = []

    def factory(database_url: str, store, linking=None, **env_overrides) -> Live:
        _migrate(base_env(database_url, tmp_path))
        clock = Clock()

        def build(issuer: str) -> Live:
            env = {**base_env(database_url, tmp_path), "IDP_ISSUER": issuer, **env_overrides}
            # The worker is woken in-process: the fault is the store's alone.
            app = create_app(
                load_settings(env),
                notifier=RecordingLogoutNotifier(),
                store=store,
                clock=clock,
                linking=linking,
                waker=LocalWaker(),
            )
            return Live(issuer, app, clock, store=store)

        live = start_server(build)
        live.start_worker(TEST_RETRY, poll=0.1)
        started.append(live)
        return live

    yield factory
    for live in started:
        live.stop()
        with live.app.app_context():
            from idp.extensions import db

            db.session.remove()
            db.engine.dispose()

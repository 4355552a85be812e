"""Fixtures. Every test that takes ``live`` runs twice: on the embedded defaults (SQLite and
the in-process store) and on production's storage (PostgreSQL and Redis), for real."""

from __future__ import annotations

import os

import pytest
import redis
import sqlalchemy as sa

from idp import create_app
from idp.adapters.logout_http import RecordingLogoutNotifier
from idp.adapters.sql.models import Base
from idp.adapters.store_memory import MemoryStore
from idp.adapters.store_redis import RedisStore
from idp.config import load_settings
from idp.services.outbox_worker import RetryPolicy
from tests.support import Clock, Live, start_server

PG_URL = os.environ.get("IDP_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("IDP_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SECRET = "test-secret-key-with-enough-length-0123456789"
PROFILES = ("embedded", "pg-redis")
# Retries within a test's patience; the production defaults are in RetryPolicy.
TEST_RETRY = RetryPolicy(max_attempts=4, backoff=0.05, max_backoff=0.5, lease=10)


def pytest_configure(config):
    """No silent skips: the production storage must be reachable, or the run fails."""
    try:
        engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001
        pytest.exit(f"PostgreSQL is unreachable at {PG_URL}: {exc}", returncode=3)
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except Exception as exc:  # noqa: BLE001
        pytest.exit(f"Redis is unreachable at {REDIS_URL}: {exc}", returncode=3)


@pytest.fixture(scope="session")
def worker(request) -> str:
    """A name unique to this worker of this run: concurrent runs must not share state."""
    name = getattr(request.config, "workerinput", {}).get("workerid", "gw")
    return f"{name}_{os.getpid()}"


def _pg_url(schema: str) -> str:
    return PG_URL.replace("postgresql://", "postgresql+psycopg://") + (
        f"?options=-csearch_path%3D{schema}"
    )


def _migrate(env: dict) -> None:
    from flask_migrate import upgrade

    app = create_app(load_settings(env), store=MemoryStore())
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
        app.extensions["idp.services"].keys.ensure_keys()


@pytest.fixture(scope="session")
def databases(worker, tmp_path_factory) -> dict[str, str]:
    """One migrated database per profile and xdist worker (an own schema on PostgreSQL)."""
    schema = f"t_{worker}"
    engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    engine.dispose()
    var = tmp_path_factory.mktemp("var")
    urls = {"embedded": f"sqlite:///{var / 'idp.sqlite3'}", "pg-redis": _pg_url(schema)}
    for url in urls.values():
        _migrate(base_env(url, var))
    yield urls
    engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()


def base_env(database_url: str, var) -> dict:
    return {
        "IDP_ENV": "test",
        "IDP_SECRET_KEY": SECRET,
        "IDP_DATABASE_URL": database_url,
        "IDP_VAR_DIR": str(var),
        "IDP_EXTRA_SCOPES": "linking linking:auto linking:read",
        "IDP_RESOURCES": "urn:elk:linking-service",
    }


def _reset(url: str) -> None:
    """Empty every table but the signing keys (key generation is slow; keys are reusable)."""
    engine = sa.create_engine(url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name != "signing_keys"]
    with engine.begin() as conn:
        if url.startswith("postgresql"):
            conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(sa.text(f"DELETE FROM {name}"))
    engine.dispose()


@pytest.fixture(params=PROFILES)
def profile(request) -> str:
    return request.param


@pytest.fixture
def make_live(profile, databases, worker, tmp_path):
    """Start an IdP on a loopback port; ``make_live(IDP_CODE_TTL="5")`` overrides settings,
    ``make_live(notifier=...)`` delivers back-channel logout for real instead of recording it."""
    started: list[Live] = []
    url = databases[profile]
    _reset(url)
    stores = []

    def factory(
        *,
        outbox_worker: bool = True,
        policy=None,
        notifier=None,
        social_providers=None,
        **env_overrides,
    ) -> Live:
        """``outbox_worker``: run the real outbox worker beside the server (as `idp worker`
        does), with the retry ``policy``; ``notifier``: the back-channel logout adapter;
        ``social_providers``: the social sign-in adapters by name (twins), instead of the
        configured ones."""
        clock = Clock()
        if profile == "pg-redis":
            store = RedisStore(REDIS_URL, prefix=f"idp-test:{worker}:")
        else:
            store = MemoryStore(clock=clock)
        store.clear()
        stores.append(store)
        notifier = notifier or RecordingLogoutNotifier()

        def build(issuer: str) -> Live:
            env = base_env(url, tmp_path)
            env["IDP_ISSUER"] = issuer
            env.update(env_overrides)
            app = create_app(
                load_settings(env),
                notifier=notifier,
                store=store,
                clock=clock,
                social_providers=social_providers,
            )
            return Live(issuer, app, clock, notifier=notifier, store=store, profile=profile)

        live = start_server(build)
        started.append(live)
        if outbox_worker:
            live.start_worker(policy or TEST_RETRY)
        return live

    yield factory
    for live in started:
        live.stop()
        with live.app.app_context():
            from idp.extensions import db

            db.session.remove()
            db.engine.dispose()
    for store in stores:
        store.clear()


@pytest.fixture
def live(make_live) -> Live:
    return make_live()

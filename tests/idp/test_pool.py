"""Pooled connections are pinged only after sitting idle (idp/adapters/sql/pool.py, issue 10).
A connection is lost behind the pool's back by terminating its PostgreSQL backend (SQLite has
no server to lose; there the pool is only shown to keep working); the pool's clock is moved
instead of sleeping."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from idp.adapters.sql.pool import ping_when_idle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _engine(url: str, clock: Clock) -> sa.Engine:
    engine = sa.create_engine(url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle=5.0, clock=clock)
    return engine


def _lose_the_connection(engine: sa.Engine, url: str) -> None:
    with engine.connect() as conn:
        pid = conn.execute(sa.text("select pg_backend_pid()")).scalar()
    killer = sa.create_engine(url)
    with killer.begin() as conn:
        conn.execute(sa.text("select pg_terminate_backend(:pid)"), {"pid": pid})
    killer.dispose()


def test_the_pool_serves_many_checkouts(profile, databases):
    clock = Clock()
    engine = _engine(databases[profile], clock)
    for step in range(20):
        clock.now += step % 7  # some checkouts inside the idle window, some past it
        with engine.connect() as conn:
            assert conn.execute(sa.text("select 1")).scalar() == 1
    engine.dispose()


def test_an_idle_connection_that_died_is_replaced_before_use(databases):
    clock = Clock()
    engine = _engine(databases["pg-redis"], clock)
    _lose_the_connection(engine, databases["pg-redis"])
    clock.now += 5.0
    with engine.connect() as conn:
        assert conn.execute(sa.text("select 1")).scalar() == 1
    engine.dispose()


def test_a_connection_used_moments_ago_is_not_pinged(databases):
    """The trade made for one round trip less per request: a connection lost within the idle
    window fails its next statement once; the pool is renewed after that."""
    clock = Clock()
    engine = _engine(databases["pg-redis"], clock)
    _lose_the_connection(engine, databases["pg-redis"])
    clock.now += 1.0
    with pytest.raises(sa.exc.DBAPIError), engine.connect() as conn:
        conn.execute(sa.text("select 1"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("select 1")).scalar() == 1
    engine.dispose()

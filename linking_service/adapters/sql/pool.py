"""A pooled connection is pinged before use only when it sat idle for a while.

``pool_pre_ping`` cost a ``SELECT 1`` round trip on every checkout, that is on every RPC that
reads the database: as much as the RPC's own query (issue 10). A connection checked in less
than ``idle`` seconds ago was working then; one idle for longer is pinged as before, and a dead
one is replaced before the RPC sees it (SQLAlchemy's ``DisconnectionError`` recipe). Should the
database restart inside that window, the first statement on such a connection fails once (the
RPC answers ``INTERNAL``; the health probe also turns NOT_SERVING); SQLAlchemy then invalidates
the whole pool, so every later checkout connects anew. The same rule as the IdP's
(``idp/adapters/sql/pool.py``); the services share no code but ``elk_common``.
"""

from __future__ import annotations

import time

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine

IDLE_SECONDS = 5.0


def ping_when_idle(engine: Engine, idle: float = IDLE_SECONDS, clock=time.monotonic) -> None:
    """Install the checkout/checkin hooks on ``engine`` (created without ``pool_pre_ping``)."""

    @event.listens_for(engine, "checkin")
    def checked_in(dbapi_connection, record) -> None:
        record.info["idle_since"] = clock()

    @event.listens_for(engine, "checkout")
    def checked_out(dbapi_connection, record, proxy) -> None:
        since = record.info.get("idle_since")
        if since is not None and clock() - since < idle:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            raise exc.DisconnectionError(str(error)) from error
        if not alive:
            raise exc.DisconnectionError("ping failed")

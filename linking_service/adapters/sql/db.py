"""Engine, sessions, the unit of work and the schema check of the linking service's database."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from linking_service.adapters.sql.pool import ping_when_idle

#: Marks connections that only read: on SQLite they begin DEFERRED and never wait for the
#: write lock (in WAL mode a reader never waits for a writer).
READ_ONLY = "linking_read_only"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(conn, _record):
            # SQLAlchemy's documented recipe: let the "begin" hook below issue BEGIN.
            conn.isolation_level = None
            cur = conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # Writers take the write lock at the start, so read-then-write transactions
            # serialize the way SELECT … FOR UPDATE does on PostgreSQL. Readers do not.
            if conn.get_execution_options().get(READ_ONLY):
                conn.exec_driver_sql("BEGIN DEFERRED")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = create_engine(url, pool_size=10, max_overflow=20)
    ping_when_idle(engine)  # not pool_pre_ping: no SELECT 1 before every statement
    return engine


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def read_only_sessions(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """Sessions on the same pool for reads only (the billing directory): they never wait for
    the write lock another unit of work of this process holds."""
    engine = sessions.kw["bind"].execution_options(**{READ_ONLY: True})
    return sessionmaker(engine, expire_on_commit=False)


def read_engine(sessions: sessionmaker[Session]) -> Engine:
    """The engine of ``sessions`` for reads made of ONE statement each (the hot RPCs).

    On PostgreSQL in autocommit: a single SELECT is its own snapshot, so the BEGIN and the
    COMMIT around it were two round trips that bought nothing. On SQLite marked read-only
    (``BEGIN DEFERRED``: never waits for a writer). Never joins a unit of work: a read that
    must see the current transaction's writes uses that transaction's session instead."""
    engine = sessions.kw["bind"]
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine.execution_options(**{READ_ONLY: True})


MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def _alembic() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def create_schema(engine: Engine) -> None:
    """Apply the Alembic migrations (``linking-service db upgrade``; nothing else runs them).

    A database made before migrations existed (tables, no ``alembic_version``) is stamped as
    the first revision, then upgraded.
    """
    config = _alembic()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        tables = set(inspect(connection).get_table_names())
        if "links" in tables and "alembic_version" not in tables:
            command.stamp(config, "0001")
        command.upgrade(config, "head")


class SchemaBehind(RuntimeError):
    """The database is not at the code's migration head."""


def check_schema(engine: Engine) -> None:
    """Refuse to run on a database whose schema is not the one this code was written for."""
    head = ScriptDirectory.from_config(_alembic()).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        raise SchemaBehind(
            f"the database schema is at revision {current or 'none'}, this code needs {head}: "
            "run `linking-service db upgrade` first"
        )


# The unit of work of the current call, if one is open: ``transaction()`` joins it with a
# savepoint instead of committing on its own (see ``unit_of_work``).
_ambient: contextvars.ContextVar[tuple[sessionmaker, Session] | None] = contextvars.ContextVar(
    "linking_unit_of_work", default=None
)


@contextmanager
def unit_of_work(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction for a whole call: every ``transaction()`` opened inside it (in this
    thread) joins it, so the call commits once, or not at all."""
    session = sessions()
    token = _ambient.set((sessions, session))
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        _ambient.reset(token)
        session.close()


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error. Inside ``unit_of_work``
    of the same sessions, a savepoint of that transaction instead."""
    ambient = _ambient.get()
    if ambient is not None and ambient[0] is sessions:
        session = ambient[1]
        with session.begin_nested():
            yield session
        return
    session = sessions()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()

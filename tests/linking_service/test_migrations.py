"""The linking service's Alembic migrations build exactly the schema the models describe, on
SQLite and on PostgreSQL, and adopt a database made before migrations existed."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from linking_service.adapters.sql.db import MIGRATIONS, create_schema, make_engine
from linking_service.adapters.sql.models import Base


def no_drift(engine) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.check(config)  # raises when the models and the migrated schema differ


def test_migrations_match_the_models(linking_databases, profile):
    engine = make_engine(linking_databases[profile])
    try:
        create_schema(engine)  # already at head: a no-op
        no_drift(engine)
    finally:
        engine.dispose()


def test_a_database_made_without_migrations_is_adopted(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite3'}")
    Base.metadata.create_all(engine)
    create_schema(engine)
    with engine.connect() as conn:
        assert conn.execute(sa.text("select version_num from alembic_version")).scalar()
    no_drift(engine)
    engine.dispose()

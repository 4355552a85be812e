"""Alembic environment of the linking service: runs on the connection the caller passes
(``linking_service.adapters.sql.db.create_schema``) or on LINKING_DATABASE_URL."""

from alembic import context
from sqlalchemy import create_engine

from linking_service.adapters.sql.models import Base

config = context.config
target_metadata = Base.metadata


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    from linking_service.config import load_settings

    engine = create_engine(load_settings().database_url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()

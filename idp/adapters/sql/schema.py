"""Whether the database's schema is at the code's Alembic head (readiness).

The heads come from the migration scripts shipped with the code (read once); the database's
revisions from ``alembic_version``. A database without that table has never been migrated.
"""

from __future__ import annotations

import functools
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"


@functools.cache
def code_heads(directory: str = str(MIGRATIONS_DIR)) -> frozenset[str]:
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory(directory).get_heads())


class SqlSchemaCheck:
    """``behind()`` is True while the database lacks a migration the code has."""

    def __init__(self, session: Session, directory: str = str(MIGRATIONS_DIR)) -> None:
        self._db = session
        self._directory = directory

    def behind(self) -> bool:
        try:
            current = {
                r for (r,) in self._db.execute(text("SELECT version_num FROM alembic_version"))
            }
        except SQLAlchemyError:
            current = set()
        finally:
            self._db.rollback()
        return not code_heads(self._directory) <= current

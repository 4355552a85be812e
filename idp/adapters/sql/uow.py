"""The unit of work on a SQLAlchemy session (see :class:`idp.persistence.UnitOfWork`).

The shape of ``linking_service/adapters/sql/db.py`` ``transaction()``, for Flask-SQLAlchemy's
scoped session (one session per application context, ``expire_on_commit=False``): the
outermost block commits once or rolls back; inner blocks join it. The nesting depth is kept
in ``session.info``, so every service sharing the session sees the same transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session, scoped_session

_DEPTH = "idp.uow.depth"


class SqlUnitOfWork:
    def __init__(self, session: Session | scoped_session) -> None:
        self._session = session

    @property
    def active(self) -> bool:
        return self._session.info.get(_DEPTH, 0) > 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        info = self._session.info
        depth = info.get(_DEPTH, 0)
        info[_DEPTH] = depth + 1
        try:
            if depth:
                yield  # joined: the outermost block decides
                return
            try:
                yield
                self._session.commit()
            except BaseException:
                self._session.rollback()
                raise
        finally:
            info[_DEPTH] = depth

    def end_read(self) -> None:
        """End a read-only transaction opened outside any block (releases the connection);
        inside a block it would discard the use case's work, so it does nothing there."""
        if not self.active:
            self._session.rollback()

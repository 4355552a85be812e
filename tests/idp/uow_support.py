"""Helpers of the unit-of-work tests: COMMITs and statements counted on the real engine."""

from __future__ import annotations

import contextlib
import time

from sqlalchemy import event

from idp.services.tokens import Authentication


class Counter:
    """COMMITs and SQL statements on an engine, from the moment it is attached."""

    def __init__(self, engine) -> None:
        self.engine, self.commits, self.statements = engine, 0, []

    def _commit(self, conn) -> None:
        self.commits += 1

    def _statement(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self.statements.append(statement.split()[0].upper())

    def __enter__(self) -> Counter:
        event.listen(self.engine, "commit", self._commit)
        event.listen(self.engine, "before_cursor_execute", self._statement)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "commit", self._commit)
        event.remove(self.engine, "before_cursor_execute", self._statement)


@contextlib.contextmanager
def counting(app):
    """Count on the engine of ``app`` (every connection: request threads included)."""
    from idp.extensions import db

    with app.app_context():
        engine = db.engine
    with Counter(engine) as counter:
        yield counter


def services(app):
    return app.extensions["idp.services"]


def issue_refresh(app, user_id: str, client_id: str) -> str:
    with app.app_context():
        s = services(app)
        issued = s.tokens.issue(
            s.clients.get(client_id),
            s.users.get(user_id),
            "openid offline_access",
            [s.tokens.policy.issuer],
            authn=Authentication(int(time.time()), None, ("pwd",), None),
            include_refresh=True,
        )
        return issued.response["refresh_token"]


def rows(app, query):
    from idp.extensions import db

    with app.app_context():
        found = db.session.execute(query).all()
        db.session.rollback()
        return found

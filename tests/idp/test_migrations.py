"""The IdP's migrations build exactly the schema its models describe (SQLite, PostgreSQL)."""

from __future__ import annotations

from flask_migrate import check


def test_idp_migrations_match_the_models(live):
    with live.ctx():
        check(directory=live.app.extensions["migrate"].directory)

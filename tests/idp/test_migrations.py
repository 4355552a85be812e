"""The IdP's migrations build exactly the schema its models describe (SQLite, PostgreSQL)."""

from __future__ import annotations

import logging

from flask_migrate import check, upgrade


def test_idp_migrations_match_the_models(live):
    with live.ctx():
        check(directory=live.app.extensions["migrate"].directory)


def test_migrating_leaves_the_loggers_of_the_process_enabled(live):
    """Alembic's env.py configures logging from alembic.ini; by default that disables every
    logger created before it, and the app's errors would then vanish from its own log."""
    loggers = [logging.getLogger(name) for name in ("idp.web.errors", "linking_service.auth")]
    with live.ctx():
        upgrade(directory=live.app.extensions["migrate"].directory)
    assert [logger.disabled for logger in loggers] == [False, False]

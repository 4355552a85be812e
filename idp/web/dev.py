"""The development outbox: messages the dev SMS and e-mail senders kept (never in production)."""

from __future__ import annotations

from flask import Blueprint, abort, render_template

from idp.adapters.outbox import latest_messages
from idp.extensions import db
from idp.web import settings

bp = Blueprint("dev", __name__, url_prefix="/dev")


@bp.before_request
def only_in_development():
    if settings().is_production or not settings().dev_outbox:
        abort(404)


@bp.get("/outbox")
def outbox():
    return render_template("dev/outbox.html", messages=latest_messages(db.session, limit=100))

"""The account's own pages (a minimal set until the account lifecycle lands)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from idp.web import services
from idp.web.cookies import current_session

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.get("")
def home():
    sso = current_session()
    if sso is None:
        return redirect(url_for("auth.login"), code=303)
    user = services().users.get(sso.user_id)
    return render_template(
        "account.html",
        user=user,
        consents=services().consents.list_for(user.id),
        sessions=services().sessions.list_for(user.id),
        current_sid=sso.id,
        welcome=request.args.get("welcome"),
    )


@bp.post("/apps/<client_id>/revoke")
def revoke_app(client_id: str):
    sso = current_session()
    if sso is None:
        return redirect(url_for("auth.login"), code=303)
    services().consents.revoke_app(sso.user_id, client_id)
    return redirect(url_for("account.home"), code=303)

"""«Главная страница ЕЛК»: the person, their billing accounts (from the linking service),
apps with access, sessions."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for

from idp.domain.errors import LinkingFailed, ValidationError
from idp.services.cabinet import Person
from idp.web import services
from idp.web.attach import linking_message
from idp.web.carry import client_name
from idp.web.cookies import current_session

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.get("")
def home():
    sso = current_session()
    if sso is None:
        return redirect(url_for("auth.login"), code=303)
    user = services().users.get(sso.user_id)
    # A search for billing accounts the linking service missed at confirmation: once more.
    auto_pending = not services().auto_attach.run(user)
    # The rest of the page works without the linking service: only its part says so.
    accounts, accounts_error = None, None
    try:
        accounts = services().cabinet.accounts(Person(user.id, sso.id))
    except LinkingFailed as exc:
        accounts_error = linking_message(exc)
    return render_template(
        "account.html",
        user=user,
        accounts=accounts,
        accounts_error=accounts_error,
        auto_pending=auto_pending,
        auto_attached=[a for a in accounts or () if a.number in (user.auto_attached or ())],
        consents=services().consents.list_for(user.id),
        sessions=services().sessions.list_for(user.id),
        current_sid=sso.id,
        welcome=request.args.get("welcome"),
        detached=request.args.get("detached"),
        portal_name=client_name(request.args.get("portal")),
    )


@bp.post("/finish-without-attachment")
def finish_without_attachment():
    """«Завершить регистрацию без привязки лицевого счета»: recorded, then the main page."""
    sso = current_session()
    if sso is None:
        return redirect(url_for("auth.login"), code=303)
    services().users.finish_without_attachment(services().users.get(sso.user_id))
    return redirect(url_for("account.home"), code=303)


@bp.route("/accounts/<number>/detach", methods=["GET", "POST"])
def detach(number: str):
    """Detach a billing account: GET asks to confirm, POST (CSRF-checked) detaches."""
    sso = current_session()
    if sso is None:
        return redirect(url_for("auth.login"), code=303)
    error, status = None, 200
    if request.method == "POST":
        try:
            services().cabinet.detach(Person(sso.user_id, sso.id), number)
        except ValidationError:
            return redirect(url_for("account.home"), code=303)
        except LinkingFailed as exc:
            if exc.reason == "ACCOUNT_NOT_ATTACHED":
                return redirect(url_for("account.home"), code=303)
            error, status = linking_message(exc), 503
        else:
            return redirect(url_for("account.home", detached=number), code=303)
    user = services().users.get(sso.user_id)
    return render_template("detach.html", user=user, number=number, error=error), status


@bp.post("/apps/<client_id>/revoke")
def revoke_app(client_id: str):
    sso = current_session()
    if sso is None:
        return redirect(url_for("auth.login"), code=303)
    services().consents.revoke_app(sso.user_id, client_id)
    return redirect(url_for("account.home"), code=303)

"""Sign-in and consent pages: the interactions of the authorization endpoint."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import gettext, lazy_gettext

from idp.domain.errors import AccountBlocked, AuthenticationFailed
from idp.domain.scopes import split_scope
from idp.services.authentication import PASSWORD_ACR
from idp.web import client_address, services, settings
from idp.web.carry import client_name
from idp.web.cookies import cookie_name, current_session, set_session_cookie
from idp.web.filters import SCOPE_LABELS
from idp.web.oauth import StoredRequest, load_interaction, process_authorization, save_interaction

bp = Blueprint("auth", __name__)

GENERIC_FAILURE = lazy_gettext("Неверный логин или пароль.")
# Shown only after a correct password: the public cannot tell a blocked account from others.
BLOCKED = lazy_gettext("Вход в учётную запись приостановлен. Обратитесь в поддержку Ростелекома.")


def _client_name(interaction: dict | None) -> str | None:
    if not interaction:
        return None
    client = services().clients.get(interaction.get("client_id") or "")
    return client.name if client else None


@bp.get("/")
def index():
    return redirect(url_for("account.home"), code=303)


@bp.route("/login", methods=["GET", "POST"])
def login():
    uid = request.values.get("interaction") or None
    interaction = load_interaction(uid) if uid else None
    if uid and interaction is None:
        return render_template(
            "error.html",
            status=400,
            message=gettext("Время на вход истекло. Вернитесь в приложение и начните заново."),
        ), 400
    hint = (interaction or {}).get("params", {}).get("login_hint", "")
    if request.method == "GET":
        if interaction is None and current_session() is not None:
            return redirect(url_for("account.home"), code=303)
        notice = None
        if request.args.get("reset"):
            notice = gettext("Пароль изменён. Войдите с новым паролем.")
        elif request.args.get("upgraded"):
            notice = gettext("Учётная запись подключена к Единому личному кабинету. Войдите.")
            if request.args.get("upgraded") == "kept":
                notice += " " + gettext(
                    "Фамилия, имя и отчество сохранены из прежнего личного кабинета; изменить "
                    "их можно в разделе «Персональная информация»."
                )
        return render_template(
            "login.html",
            interaction=uid,
            client_name=_client_name(interaction),
            login=hint[:254],
            error=None,
            notice=notice,
            portal_name=None if interaction else client_name(request.args.get("portal")),
        )

    login_value = request.form.get("login", "")
    try:
        user = services().auth.authenticate(
            login_value, request.form.get("password", ""), client_address()
        )
    except AuthenticationFailed as exc:
        return render_template(
            "login.html",
            interaction=uid,
            client_name=_client_name(interaction),
            login=login_value[:254],
            error=str(BLOCKED if isinstance(exc, AccountBlocked) else GENERIC_FAILURE),
        ), 200
    opened = services().sessions.open(
        user,
        amr=["pwd"],
        acr=PASSWORD_ACR,
        remember=request.form.get("remember") == "on",
        ip=client_address(),
        user_agent=request.headers.get("User-Agent"),
        previous_cookie=request.cookies.get(cookie_name()),
    )
    session.clear()  # a new CSRF secret with the new identity
    target = url_for("oauth.resume", uid=uid) if uid else url_for("account.home")
    response = redirect(target, code=303)
    set_session_cookie(response, opened)
    return response


@bp.route("/consent/<uid>", methods=["GET", "POST"])
def consent(uid: str):
    interaction = load_interaction(uid)
    if interaction is None:
        return render_template(
            "error.html",
            status=400,
            message=gettext("Время на вход истекло. Вернитесь в приложение и начните заново."),
        ), 400
    sso = current_session()
    if sso is None:
        return redirect(url_for("auth.login", interaction=uid), code=303)
    req = StoredRequest(settings().issuer + "/authorize", interaction["params"])
    if request.method == "POST":
        if request.form.get("decision") != "allow":
            return process_authorization(req, interaction, uid, deny=True)
        client_id = interaction["client_id"]
        scopes = split_scope(interaction["params"].get("scope"))
        client = services().clients.get(client_id)
        allowed = [s for s in scopes if client and s in client.scopes]
        services().consents.grant(sso.user_id, client_id, allowed)
        interaction["consented_by"] = sso.user_id
        save_interaction(interaction, uid)
        return redirect(url_for("oauth.resume", uid=uid), code=303)
    client = services().clients.get(interaction["client_id"])
    scopes = [
        s for s in split_scope(interaction["params"].get("scope")) if client and s in client.scopes
    ]
    return render_template(
        "consent.html",
        uid=uid,
        client_name=client.name if client else "",
        scopes=[(s, str(SCOPE_LABELS.get(s, s))) for s in scopes],
    )

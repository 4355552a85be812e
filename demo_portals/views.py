"""The portal's pages: home, «Войти через ЕЛК», the callback, «Выйти», and the back-channel
logout endpoint the IdP calls."""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import UTC, datetime

import requests
from authlib.common.errors import AuthlibBaseError
from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from demo_portals.backchannel import LogoutTokenInvalid
from demo_portals.linking import peek_claims
from demo_portals.sessions import PortalSession

log = logging.getLogger(__name__)
bp = Blueprint("portal", __name__)

# The ID token claims shown, in this order, with what they mean.
CLAIM_LABELS = (
    ("family_name", "Фамилия"),
    ("given_name", "Имя"),
    ("middle_name", "Отчество"),
    ("sub", "Идентификатор в ЕЛК (sub)"),
    ("amr", "Способы входа (amr)"),
    ("acr", "Уровень входа (acr)"),
    ("auth_time", "Время входа (auth_time)"),
    ("sid", "Сеанс ЕЛК (sid)"),
    ("iss", "Издатель (iss)"),
    ("aud", "Получатель (aud)"),
)
TIME_CLAIMS = {"auth_time", "exp", "iat"}


def portal():
    return current_app.extensions["portal"]


def _when(ts) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%d.%m.%Y %H:%M:%S UTC")


def _shown(name: str, value) -> str:
    if name in TIME_CLAIMS and isinstance(value, int | float):
        return _when(value)
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


def _csrf() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(24)
    return session["csrf"]


@bp.app_context_processor
def _globals():
    return {"settings": portal().settings, "csrf_token": _csrf}


def _current() -> PortalSession | None:
    return portal().sessions.get(session.get("portal_session"))


@bp.get("/")
def home():
    signed_out = request.args.get("signed_out") == "1"
    if request.args.get("state"):
        # Back from the IdP's logout (RP-Initiated Logout 1.0 §3): the state must be ours.
        try:
            portal().elk.validate_logout_response()
            signed_out = True
        except AuthlibBaseError:
            log.info("logout response with an unknown state ignored")
    current = _current()
    if current is None:
        # A key without a session: the IdP ended it over the back channel.
        ended_elsewhere = session.pop("portal_session", None) is not None
        return render_template(
            "home.html", signed_out=signed_out, ended_elsewhere=ended_elsewhere and not signed_out
        )
    claims = current.claims
    shown = [(label, _shown(name, claims[name])) for name, label in CLAIM_LABELS if name in claims]
    full_name = " ".join(
        claims[n] for n in ("family_name", "given_name", "middle_name") if claims.get(n)
    )
    # Russian courtesy: «Мария Петровна», by given name and patronymic.
    greeting = " ".join(claims[n] for n in ("given_name", "middle_name") if claims.get(n))
    token = peek_claims(current.access_token)
    return render_template(
        "signed_in.html",
        full_name=full_name or claims["sub"],
        greeting=greeting or full_name or claims["sub"],
        claims=shown,
        accounts=portal().linking.list_accounts(current.access_token),
        token_aud=_shown("aud", token.get("aud", "—")),
        token_scope=current.token_scope or token.get("scope", "—"),
        token_exp=_when(token["exp"]) if "exp" in token else "—",
    )


@bp.get("/login")
def login():
    try:
        return portal().elk.authorize_redirect(portal().settings.redirect_uri)
    except requests.RequestException:
        return _problem("ЕЛК сейчас недоступен. Попробуйте войти чуть позже.", 503)


@bp.get("/callback")
def callback():
    if request.args.get("error"):
        message = {
            "access_denied": "Вы отказались от входа через ЕЛК.",
            "login_required": "Вход в ЕЛК не выполнен.",
        }.get(request.args["error"], "ЕЛК не выполнил вход.")
        return _problem(message, 400, request.args.get("error_description"))
    try:
        # RFC 8707: the access token is for the linking service, not for the IdP.
        token = portal().elk.authorize_access_token(resource=portal().settings.resource)
    except AuthlibBaseError as exc:
        return _problem("Вход не удался: ответ ЕЛК не прошёл проверку.", 400, str(exc))
    except requests.RequestException:
        return _problem("ЕЛК сейчас недоступен. Попробуйте войти чуть позже.", 503)
    claims = dict(token.get("userinfo") or {})
    if not claims.get("sub"):
        return _problem("Вход не удался: ЕЛК не прислал ID-токен.", 400)
    previous = session.pop("portal_session", None)
    portal().sessions.close(previous)
    session["portal_session"] = portal().sessions.open(
        PortalSession(
            sub=claims["sub"],
            sid=claims.get("sid"),
            id_token=token["id_token"],
            claims=claims,
            access_token=token["access_token"],
            token_scope=token.get("scope", ""),
            token_expires_at=token.get("expires_at"),
        )
    )
    return redirect(url_for("portal.home"), code=303)


@bp.post("/logout")
def logout():
    """Close the portal's session, then ask the IdP to end the SSO session
    (OIDC RP-Initiated Logout 1.0 §2) and come back to the home page."""
    sent = request.form.get("csrf_token", "")
    if not hmac.compare_digest(sent, session.get("csrf", "")):
        return _problem("Страница устарела — обновите её и нажмите «Выйти» снова.", 400)
    current = _current()
    portal().sessions.close(session.pop("portal_session", None))
    if current is None:
        return redirect(url_for("portal.home", signed_out=1), code=303)
    try:
        return portal().elk.logout_redirect(
            post_logout_redirect_uri=portal().settings.post_logout_redirect_uri,
            id_token_hint=current.id_token,
        )
    except requests.RequestException:
        return _problem("Вы вышли из портала, но ЕЛК сейчас недоступен: выйдите из ЕЛК позже.", 503)


@bp.post("/backchannel-logout")
def backchannel_logout():
    """OIDC Back-Channel Logout 1.0 §2.5–2.8: validate the logout token, end the portal's
    sessions of its ``sid`` (or ``sub``), answer 200; any failure is a 400."""
    try:
        found = portal().logout_tokens.verify(request.form.get("logout_token", ""))
    except LogoutTokenInvalid as exc:
        log.warning("back-channel logout refused: %s", exc)
        response = jsonify(error="invalid_request", error_description=str(exc))
        response.status_code = 400
    except requests.RequestException:
        response = jsonify(error="temporarily_unavailable", error_description="JWKS unreachable")
        response.status_code = 503
    else:
        ended = portal().sessions.end_for(found.sid, found.sub)
        log.info("back-channel logout: %d session(s) ended", ended)
        response = current_app.response_class(status=200)
    response.headers["Cache-Control"] = "no-store"
    return response


def _problem(message: str, status: int, detail: str | None = None):
    return render_template("problem.html", message=message, detail=detail), status

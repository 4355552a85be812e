"""OAuth 2.0 / OpenID Connect endpoints: authorize, token, userinfo, revoke, introspect, logout.

The authorization endpoint is a pipeline: Authlib validates client, redirect URI, response
type, scope and PKCE (our hooks tighten it); then we decide whether the user must sign in
or consent, handing off to those pages as an *interaction* kept in the shared store; then
we issue the code. Errors go back to the client only once the redirect URI is proven.
"""

from __future__ import annotations

import json

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc6749 import OAuth2Error, OAuth2Request
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from flask import Blueprint, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext

from idp.domain.scopes import split_scope
from idp.services.crypto import new_token
from idp.services.keys import TokenInvalid
from idp.services.tokens import Authentication, user_claims
from idp.web import metrics, server, services, settings
from idp.web.cookies import clear_session_cookie, current_session

bp = Blueprint("oauth", __name__)


class StoredRequest(OAuth2Request):
    """An authorization request resumed from an interaction."""

    def __init__(self, uri: str, params: dict) -> None:
        super().__init__("GET", uri)
        self.payload = BasicOAuth2Payload(params)

    @property
    def args(self):
        return self.payload.data

    @property
    def form(self):
        return {}


# --- interactions ---------------------------------------------------------------------------


def save_interaction(data: dict, uid: str | None = None) -> str:
    uid = uid or new_token(24)
    services().store.set(f"interaction:{uid}", json.dumps(data), settings().interaction_ttl)
    return uid


def load_interaction(uid: str) -> dict | None:
    if not uid or len(uid) > 64:
        return None
    raw = services().store.get(f"interaction:{uid}")
    return json.loads(raw) if raw else None


# --- authorization endpoint ----------------------------------------------------------------


def _redirect_to_client(uri: str, params: list[tuple[str, str]]):
    # RFC 9207 §2: the issuer identifies itself in every authorization response.
    params = [*params, ("iss", settings().issuer)]
    return redirect(add_params_to_uri(uri, params), code=303)


def _error_response(error: OAuth2Error):
    if error.redirect_uri:
        return _redirect_to_client(error.redirect_uri, error.get_body())
    # RFC 6749 §4.1.2.1: never redirect to an unverified URI; tell the user instead.
    return render_template(
        "error.html",
        status=400,
        message=gettext("Приложение передало некорректный запрос на вход."),
        detail=f"{error.error}: {error.description or ''}".strip(),
    ), 400


def process_authorization(req, interaction: dict | None, uid: str | None, deny: bool = False):
    try:
        grant = server().get_consent_grant(request=req, end_user=None)
    except OAuth2Error as error:
        return _error_response(error)
    data = grant.request.payload.data
    state = grant.request.payload.state
    base = [("state", state)] if state else []
    if deny:
        return _redirect_to_client(grant.redirect_uri, [("error", "access_denied"), *base])

    prompts = set((data.get("prompt") or "").split())
    now = int(services().clock())
    session = current_session()
    fresh = bool(interaction and session and session.auth_time >= interaction["created_at"])
    max_age = data.get("max_age")
    stale = bool(session and max_age is not None and now - session.auth_time > int(max_age))
    if session is None or (("login" in prompts or stale) and not fresh):
        if "none" in prompts:
            return _redirect_to_client(grant.redirect_uri, [("error", "login_required"), *base])
        uid = save_interaction(
            {"params": dict(data), "created_at": now, "client_id": grant.request.client.client_id},
            uid,
        )
        return redirect(url_for("auth.login", interaction=uid), code=303)

    client = grant.request.client
    scopes = split_scope(grant.request.scope)
    consented = bool(interaction and interaction.get("consented_by") == session.user_id)
    if (
        not client.row.first_party
        and not consented
        and (
            "consent" in prompts
            or not services().consents.covers(session.user_id, client.client_id, scopes)
        )
    ):
        if "none" in prompts:
            return _redirect_to_client(grant.redirect_uri, [("error", "consent_required"), *base])
        record = interaction or {"params": dict(data), "created_at": now}
        record["client_id"] = client.client_id
        uid = save_interaction(record, uid)
        return redirect(url_for("auth.consent", uid=uid), code=303)

    user = services().users.get(session.user_id)
    grant.request.authn = Authentication(
        session.auth_time, session.acr, tuple(session.amr or ()), session.id
    )
    params = grant.issue_code(grant.redirect_uri, user)
    if uid:
        services().store.delete(f"interaction:{uid}")
    return _redirect_to_client(grant.redirect_uri, params)


@bp.route("/authorize", methods=["GET", "POST"])
def authorize():
    """OIDC Core §3.1.2: GET and POST both accepted."""
    return process_authorization(None, None, None)


@bp.get("/authorize/resume/<uid>")
def resume(uid: str):
    interaction = load_interaction(uid)
    if interaction is None:
        return render_template(
            "error.html",
            status=400,
            message=gettext("Время на вход истекло. Вернитесь в приложение и начните заново."),
        ), 400
    req = StoredRequest(settings().issuer + "/authorize", interaction["params"])
    return process_authorization(req, interaction, uid)


# --- token, revocation, introspection --------------------------------------------------------


@bp.post("/token")
def token():
    response = server().create_token_response()
    if response.status_code == 200:
        metrics().token_issued(request.form.get("grant_type", ""))
    return response


@bp.post("/revoke")
def revoke():
    return server().create_endpoint_response("revocation")


@bp.post("/introspect")
def introspect():
    return server().create_endpoint_response("introspection")


# --- userinfo ----------------------------------------------------------------------------------


def _bearer_error(status: int, error: str, description: str):
    response = jsonify({"error": error, "error_description": description})
    response.status_code = status
    response.headers["WWW-Authenticate"] = (
        f'Bearer realm="{settings().issuer}", error="{error}", error_description="{description}"'
    )
    return response


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo():
    """OIDC Core §5.3, bearer token per RFC 6750 §2.1 (header) or §2.2 (form body)."""
    header = request.headers.get("Authorization", "")
    token = None
    if header[:7].lower() == "bearer ":
        token = header[7:].strip()
    elif request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        token = request.form.get("access_token")
    if not token:
        response = _bearer_error(401, "invalid_request", "Bearer token required")
        response.headers["WWW-Authenticate"] = f'Bearer realm="{settings().issuer}"'
        return response
    # The grant and its account come in one read (TokenService.find_access).
    access = services().tokens.find_access(token)
    if access is None:
        return _bearer_error(401, "invalid_token", "The access token is invalid")
    if settings().issuer not in access.audience:
        return _bearer_error(401, "invalid_token", "The access token is not for this resource")
    scopes = split_scope(access.scope)
    if "openid" not in scopes or not access.user_id:
        return _bearer_error(403, "insufficient_scope", "The openid scope is required")
    holder = access.holder
    if holder is None or not holder.usable:
        return _bearer_error(401, "invalid_token", "The access token is invalid")
    return jsonify({"sub": holder.id, **user_claims(holder, scopes)})


# --- RP-initiated logout -------------------------------------------------------------------------


def _logout_target(params) -> tuple[str | None, str | None, str | None]:
    """Validate OIDC RP-Initiated Logout 1.0 §2 parameters: (redirect, client_id, error)."""
    hint = params.get("id_token_hint")
    client_id = params.get("client_id")
    sub = None
    if hint:
        try:
            # An expired ID token is still a fine hint (RP-Initiated Logout 1.0 §2).
            claims = services().keys.verify(
                hint, typ="JWT", issuer=settings().issuer, check_expiry=False
            )
        except TokenInvalid:
            return None, None, "id_token_hint is invalid"
        aud = claims.get("aud")
        aud_id = (
            aud
            if isinstance(aud, str)
            else (aud[0] if isinstance(aud, list) and len(aud) == 1 else None)
        )
        if client_id and aud_id != client_id:
            return None, None, "client_id does not match id_token_hint"
        client_id = aud_id
        sub = claims.get("sub")
    uri = params.get("post_logout_redirect_uri")
    if uri:
        client = services().clients.get(client_id) if client_id else None
        if client is None or uri not in client.post_logout_redirect_uris:
            return None, None, "post_logout_redirect_uri is not registered"
        state = params.get("state")
        if state:
            uri = add_params_to_uri(uri, [("state", state)])
    return uri, sub, None


def finish_logout(target: str | None):
    session = current_session()
    if session is not None:
        services().logout.end(session)
    response = (
        redirect(target, code=303) if target else redirect(url_for("oauth.logged_out"), code=303)
    )
    clear_session_cookie(response)
    return response


@bp.route("/logout", methods=["GET", "POST"], endpoint="end_session")
def end_session():
    params = request.values
    target, sub, error = _logout_target(params)
    if error:
        return render_template(
            "error.html",
            status=400,
            message=gettext("Некорректный запрос на выход."),
            detail=error,
        ), 400
    session = current_session()
    if session is None:
        return redirect(target or url_for("oauth.logged_out"), code=303)
    if sub is not None and sub == session.user_id:
        return finish_logout(target)
    # Without proof that the RP is asking for this user, ask the user (logout CSRF).
    return render_template(
        "logout.html",
        params={
            k: params.get(k)
            for k in ("id_token_hint", "post_logout_redirect_uri", "state", "client_id")
            if params.get(k)
        },
    )


@bp.post("/logout/confirm")
def confirm_logout():
    target, _, error = _logout_target(request.form)
    if error:
        return render_template(
            "error.html",
            status=400,
            message=gettext("Некорректный запрос на выход."),
            detail=error,
        ), 400
    return finish_logout(target)


@bp.get("/logged-out")
def logged_out():
    return render_template("logged_out.html")

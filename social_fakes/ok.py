"""A fake OK.ru (``connect.ok.ru`` + ``api.ok.ru`` on one port): reference §3 and §8 "OK".

* ``/oauth/authorize``: ``;``-separated scopes, ``layout`` (w|m|a), ``redirect_uri`` compared
  character by character with its query part ignored; ``state`` returned unchanged.
* ``/oauth/token.do``: parameters in the query or the form; ``token_type: "session"`` and a
  ``refresh_token``.
* ``/fb.do?method=users.getCurrentUser`` and ``/api/users/getCurrentUser``: require
  ``application_key`` and recompute ``sig`` exactly (md5 over the sorted ``k=v`` pairs and
  ``md5(access_token + secret)``). A mismatch → HTTP 200 ``error_code`` 104; an unknown or
  expired token → 102; a wrong public key → 101. ``email`` only with ``GET_EMAIL`` granted.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode, urlsplit

from flask import Flask, jsonify, request

from social_fakes.common import (
    FakeConfig,
    base_app,
    chosen_identity,
    error_page,
    form_and_query,
    grants,
    pick_page,
)

TITLE = "Одноклассники"


def md5_hex(value: str) -> str:
    return hashlib.md5(value.encode("utf-8")).hexdigest()  # noqa: S324 - OK's scheme


def without_query(uri: str) -> str:
    return uri.split("?", 1)[0]


def create_app(config: FakeConfig) -> Flask:
    app = base_app("ok", config)

    def api_error(code: int, message: str):
        return jsonify(error_code=code, error_msg=message, error_data=None)

    @app.route("/oauth/authorize", methods=["GET", "POST"])
    def authorize():
        q = request.args
        if q.get("client_id") != config.client_id:
            return error_page(TITLE, "Приложение не найдено (client_id).")
        redirect_uri = q.get("redirect_uri", "")
        registered = {without_query(u) for u in config.redirect_uris}
        if without_query(redirect_uri) not in registered:
            return error_page(TITLE, "redirect_uri не совпадает с адресом в настройках.")

        def back(**params: str):
            if "state" in q:
                params["state"] = q["state"]
            sep = "&" if urlsplit(redirect_uri).query else "?"
            return "", 302, {"Location": f"{redirect_uri}{sep}{urlencode(params)}"}

        if q.get("response_type") != "code" or q.get("layout", "w") not in ("w", "m", "a"):
            return back(error="invalid_request", error_description="response_type or layout")
        scope = [s for s in q.get("scope", "").split(";") if s]
        if request.method == "GET":
            return pick_page(TITLE, config.client_id, ";".join(scope), config)
        if request.form.get("decision") != "allow":
            return back(error="access_denied")
        identity = chosen_identity(config, request.form)
        if identity is None:
            return pick_page(TITLE, config.client_id, ";".join(scope), config, "Выберите имя.")
        code = grants(app).issue_code(redirect_uri=redirect_uri, scope=scope, identity=identity)
        return back(code=code)

    @app.route("/oauth/token.do", methods=["POST"])
    def token():
        p = form_and_query()
        if (p.get("client_id"), p.get("client_secret")) != (config.client_id, config.client_secret):
            return jsonify(error="invalid_client", error_description="Unknown client"), 400
        if p.get("grant_type") != "authorization_code":
            return jsonify(error="unsupported_grant_type", error_description="grant_type"), 400
        record, why = grants(app).redeem(p.get("code", ""))
        if record is None:
            return jsonify(error="invalid_grant", error_description=f"Code is {why}"), 400
        if p.get("redirect_uri") != record["redirect_uri"]:
            return jsonify(error="invalid_grant", error_description="redirect_uri mismatch"), 400
        access = grants(app).issue_token(identity=record["identity"], scope=record["scope"])
        return jsonify(
            access_token=access,
            token_type="session",
            refresh_token=grants(app).issue_token(refresh=True),
            expires_in=1800,
        )

    def current_user(params: dict[str, str]):
        if params.get("application_key") != config.application_key:
            return api_error(101, "PARAM_API_KEY : Application key is invalid")
        access_token = params.get("access_token") or params.get("session_key") or ""
        record = grants(app).token(access_token)
        if record is None or "identity" not in record:
            return api_error(102, "PARAM_SESSION_EXPIRED : Session expired")
        signed = {
            k: v for k, v in params.items() if k not in ("access_token", "session_key", "sig")
        }
        joined = "".join(f"{k}={signed[k]}" for k in sorted(signed))
        expected = md5_hex(joined + md5_hex(access_token + config.client_secret))
        if params.get("sig") != expected:
            return api_error(104, "PARAM_SIGNATURE : Invalid signature")
        identity = record["identity"]
        user = {
            "uid": identity.subject,
            "first_name": identity.given_name,
            "last_name": identity.family_name,
            "name": f"{identity.given_name} {identity.family_name}",
            "gender": "male",
            "locale": "ru",
            "pic_1": "https://i.mycdn.me/res/stub_50x50.gif",
            "has_email": bool(identity.email),
        }
        if "GET_EMAIL" in record["scope"] and identity.email:
            user["email"] = identity.email
        wanted = {f.strip().lower() for f in params.get("fields", "").split(",") if f.strip()}
        if wanted:
            user = {k: v for k, v in user.items() if k in wanted or k == "uid"}
        return jsonify(user)

    @app.route("/fb.do", methods=["GET", "POST"])
    def fb_do():
        params = form_and_query()
        if params.get("method") != "users.getCurrentUser":
            return api_error(3, "METHOD : Method not found")
        return current_user(params)

    @app.route("/api/users/getCurrentUser", methods=["GET", "POST"])
    def rest():
        return current_user(form_and_query())

    return app

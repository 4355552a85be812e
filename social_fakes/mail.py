"""A fake OAuth Mail (``oauth.mail.ru``): reference §2a and §8 (common rules).

* ``/login``: ``redirect_uri`` matched exactly (a trailing ``/`` matters), ``scope``
  space-separated (``userinfo``), optional PKCE (S256 or plain; a challenge makes the verifier
  required).
* ``POST /token``: client credentials in the body or HTTP Basic; RFC 6749 errors.
* ``GET /userinfo?access_token=…``: ``id``, ``email`` (when the person has one), names,
  ``gender``, ``locale``, ``image``; a bad token → 401 ``{"error": "invalid_token"}``.

Mail through VK ID is served by the VK ID fake (``provider=mail_ru``).
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlencode

from flask import Flask, jsonify, request

from social_fakes.common import FakeConfig, base_app, chosen_identity, error_page, grants, pick_page

TITLE = "Mail"


def create_app(config: FakeConfig) -> Flask:
    app = base_app("mail", config)

    def oauth_error(error: str, description: str, status: int = 400):
        return jsonify(error=error, error_description=description), status

    @app.route("/login", methods=["GET", "POST"])
    def login():
        q = request.args
        if q.get("client_id") != config.client_id:
            return error_page(TITLE, "Неизвестное приложение (client_id).")
        redirect_uri = q.get("redirect_uri", "")
        if redirect_uri not in config.redirect_uris:
            return error_page(TITLE, "redirect_uri не совпадает с зарегистрированным.")

        def back(**params: str):
            if "state" in q:
                params["state"] = q["state"]
            sep = "&" if "?" in redirect_uri else "?"
            return "", 302, {"Location": f"{redirect_uri}{sep}{urlencode(params)}"}

        if q.get("response_type") != "code":
            return back(error="unsupported_response_type", error_description="response_type")
        method = q.get("code_challenge_method", "plain")
        if q.get("code_challenge") and method not in ("S256", "plain"):
            return back(error="invalid_request", error_description="code_challenge_method")
        scope = q.get("scope", "")
        if request.method == "GET":
            return pick_page(TITLE, config.client_id, scope, config)
        if request.form.get("decision") != "allow":
            return back(error="access_denied", error_description="user denied access")
        identity = chosen_identity(config, request.form)
        if identity is None:
            return pick_page(TITLE, config.client_id, scope, config, "Выберите или введите имя.")
        code = grants(app).issue_code(
            redirect_uri=redirect_uri,
            challenge=q.get("code_challenge"),
            method=method,
            identity=identity,
        )
        return back(code=code)

    @app.post("/token")
    def token():
        client_id = request.form.get("client_id")
        client_secret = request.form.get("client_secret")
        if request.authorization and request.authorization.type == "basic":
            client_id = request.authorization.username
            client_secret = request.authorization.password
        if (client_id, client_secret) != (config.client_id, config.client_secret):
            return oauth_error("invalid_client", "invalid client credentials", 401)
        if request.form.get("grant_type") != "authorization_code":
            return oauth_error("unsupported_grant_type", "grant_type")
        record, why = grants(app).redeem(request.form.get("code", ""))
        if record is None:
            return oauth_error("invalid_grant", f"code is {why}")
        if request.form.get("redirect_uri") != record["redirect_uri"]:
            return oauth_error("invalid_grant", "redirect_uri mismatch")
        if record["challenge"]:
            verifier = request.form.get("code_verifier", "")
            if record["method"] == "S256":
                digest = hashlib.sha256(verifier.encode()).digest()
                verifier = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if not verifier or verifier != record["challenge"]:
                return oauth_error("invalid_grant", "code_verifier mismatch")
        return jsonify(
            access_token=grants(app).issue_token(identity=record["identity"]),
            refresh_token=grants(app).issue_token(refresh=True),
            expires_in=3600,
        )

    @app.get("/userinfo")
    def userinfo():
        record = grants(app).token(request.args.get("access_token"))
        if record is None or "identity" not in record:
            return oauth_error("invalid_token", "token not found or expired", 401)
        identity = record["identity"]
        body = {
            "id": identity.subject,
            "name": f"{identity.given_name} {identity.family_name}",
            "first_name": identity.given_name,
            "last_name": identity.family_name,
            "gender": "m",
            "locale": "ru_RU",
            "image": "",
        }
        if identity.email:
            body["email"] = identity.email
        return jsonify(body)

    return app

"""A fake Yandex ID (``oauth.yandex.ru`` + ``login.yandex.ru`` on one port): reference §4
and §8 "Yandex".

* ``/authorize``: ``redirect_uri`` optional (the first registered one then) but exact when
  given; optional PKCE (S256 or plain) — a challenge sent makes the verifier required. No
  ``scope``: the registered scopes are granted.
* ``POST /token``: client credentials in HTTP Basic or the body; Basic wins.
* ``GET /info``: ``Authorization: OAuth <token>`` or ``?oauth_token=``; a ``Bearer`` header is
  401 (unconfirmed). ``emails``/``default_email`` only with ``login:email``,
  ``default_phone`` only with ``login:default_phone``; an identity flagged
  ``no_default_email`` has an empty ``default_email`` and its address in ``emails[]``.
"""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import urlencode

from flask import Flask, jsonify, request

from social_fakes.common import FakeConfig, base_app, chosen_identity, error_page, grants, pick_page

TITLE = "Яндекс ID"


def create_app(config: FakeConfig) -> Flask:
    app = base_app("yandex", config)

    def oauth_error(error: str, description: str, status: int = 400):
        return jsonify(error=error, error_description=description), status

    @app.route("/authorize", methods=["GET", "POST"])
    def authorize():
        q = request.args
        if q.get("client_id") != config.client_id:
            return error_page(TITLE, "Неизвестное приложение (client_id).")
        redirect_uri = q.get("redirect_uri") or config.redirect_uris[0]
        if redirect_uri not in config.redirect_uris:
            return error_page(TITLE, "redirect_uri не совпадает с Callback URI приложения.")

        def back(**params: str):
            if q.get("state"):
                params["state"] = q["state"]
            sep = "&" if "?" in redirect_uri else "?"
            return "", 302, {"Location": f"{redirect_uri}{sep}{urlencode(params)}"}

        if q.get("response_type") != "code":
            return back(error="unsupported_response_type", error_description="response_type")
        method = q.get("code_challenge_method", "plain")
        if q.get("code_challenge") and method not in ("S256", "plain"):
            return back(error="invalid_request", error_description="code_challenge_method")
        scope = config.scope
        if request.method == "GET":
            return pick_page(TITLE, config.client_id, scope, config)
        if request.form.get("decision") != "allow":
            return back(error="access_denied", error_description="The user denied access")
        identity = chosen_identity(config, request.form)
        if identity is None:
            return pick_page(TITLE, config.client_id, scope, config, "Выберите или введите имя.")
        code = grants(app).issue_code(
            client_id=config.client_id,
            challenge=q.get("code_challenge"),
            method=method,
            scope=scope.split(),
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
            return oauth_error("invalid_client", "Client not found", 401)
        if request.form.get("grant_type") != "authorization_code":
            return oauth_error("unsupported_grant_type", "grant_type")
        record, why = grants(app).redeem(request.form.get("code", ""))
        if record is None:
            message = "Invalid code" if why == "unknown" else "Code has expired"
            return oauth_error("invalid_grant", message)
        if record["challenge"]:
            verifier = request.form.get("code_verifier", "")
            if record["method"] == "S256":
                digest = hashlib.sha256(verifier.encode()).digest()
                verifier = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if not verifier or verifier != record["challenge"]:
                return oauth_error("invalid_grant", "Code verifier is not valid")
        access = grants(app).issue_token(
            client_id=client_id, identity=record["identity"], scope=record["scope"]
        )
        return jsonify(
            token_type="bearer",
            access_token=access,
            expires_in=31536000,
            refresh_token=grants(app).issue_token(client_id=client_id, refresh=True),
        )

    @app.get("/info")
    def info():
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if header and scheme != "OAuth":
            return "Unauthorized", 401
        record = grants(app).token(value if header else request.args.get("oauth_token"))
        if record is None or "identity" not in record:
            return "Unauthorized", 401
        identity = record["identity"]
        body = {
            "id": identity.subject,
            "login": f"user{identity.subject}",
            "client_id": record["client_id"],
            "psuid": f"1.psuid.{identity.subject}",
            "first_name": identity.given_name,
            "last_name": identity.family_name,
            "display_name": identity.given_name,
            "real_name": f"{identity.given_name} {identity.family_name}",
            "sex": None,
        }
        if "login:email" in record["scope"] and identity.email:
            body["emails"] = [identity.email]
            no_default = "no_default_email" in identity.flags
            body["default_email"] = "" if no_default else identity.email
        if "login:default_phone" in record["scope"] and identity.phone:
            body["default_phone"] = {"id": 1, "number": identity.phone}
        return jsonify(body)

    return app

"""A fake Facebook (``www.facebook.com`` + ``graph.facebook.com`` on one port): reference §6
and §8 "Facebook".

* ``/v{N}/dialog/oauth``: comma-separated scopes; cancel → ``error=access_denied&
  error_code=200&error_description=Permissions+error&error_reason=user_denied``; both
  redirects end with the ``#_=_`` fragment Facebook adds.
* ``GET /v{N}/oauth/access_token``: wrong secret → OAuthException code 1; unknown code → 100;
  expired → 100/36007; used → 100/36009; another redirect_uri → 100/36008.
* ``/v{N}/me`` honours ``fields``; with "Require App Secret" on (``app_secret_required``), a
  missing or wrong ``appsecret_proof`` (HMAC-SHA256 of the token keyed with the app secret)
  is refused as OAuthException 190, as is a bad token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlencode

from flask import Flask, jsonify, request
from werkzeug.routing import BaseConverter

from social_fakes.common import FakeConfig, base_app, chosen_identity, error_page, grants, pick_page

TITLE = "Facebook"


class Regex(BaseConverter):
    """``<regex('…'):name>``: the API version segment, ``v24.0``."""

    def __init__(self, url_map, pattern):
        super().__init__(url_map)
        self.regex = pattern


VERSION = r"<regex('v[0-9]+\.[0-9]+'):version>"


def create_app(config: FakeConfig) -> Flask:
    app = base_app("facebook", config)
    app.url_map.converters["regex"] = Regex

    def oauth_exception(code: int, message: str, subcode: int | None = None, status: int = 400):
        error = {"message": message, "type": "OAuthException", "code": code}
        if subcode:
            error["error_subcode"] = subcode
        error["fbtrace_id"] = secrets.token_urlsafe(8)
        return jsonify(error=error), status

    @app.route(f"/{VERSION}/dialog/oauth", methods=["GET", "POST"])
    def dialog(version: str):
        q = request.args
        if q.get("client_id") != config.client_id:
            return error_page(TITLE, "Invalid App ID.")
        redirect_uri = q.get("redirect_uri", "")
        if redirect_uri not in config.redirect_uris:
            return error_page(TITLE, "URL blocked: this redirect is not allowed by the app.")

        def back(**params: str):
            if "state" in q:
                params["state"] = q["state"]
            sep = "&" if "?" in redirect_uri else "?"
            return "", 302, {"Location": f"{redirect_uri}{sep}{urlencode(params)}#_=_"}

        scope = q.get("scope", "public_profile")
        if request.method == "GET":
            return pick_page(TITLE, config.client_id, scope, config)
        if request.form.get("decision") != "allow":
            return back(
                error="access_denied",
                error_code="200",
                error_description="Permissions error",
                error_reason="user_denied",
            )
        identity = chosen_identity(config, request.form)
        if identity is None:
            return pick_page(TITLE, config.client_id, scope, config, "Выберите или введите имя.")
        code = grants(app).issue_code(
            redirect_uri=redirect_uri, scope=scope.split(","), identity=identity
        )
        return back(code=code)

    @app.get(f"/{VERSION}/oauth/access_token")
    def access_token(version: str):
        q = request.args
        if q.get("client_id") != config.client_id:
            return oauth_exception(101, "Error validating application. Invalid application ID.")
        if q.get("client_secret") != config.client_secret:
            return oauth_exception(1, "Error validating client secret.")
        record, why = grants(app).redeem(q.get("code", ""))
        if record is None:
            if why == "reused":
                return oauth_exception(100, "This authorization code has been used.", 36009)
            if why == "expired":
                return oauth_exception(100, "This authorization code has expired.", 36007)
            return oauth_exception(100, "Invalid verification code format.")
        if q.get("redirect_uri") != record["redirect_uri"]:
            return oauth_exception(
                100, "Error validating verification code. redirect_uri is not identical", 36008
            )
        return jsonify(
            access_token=grants(app).issue_token(
                identity=record["identity"], scope=record["scope"]
            ),
            token_type="bearer",
            expires_in=5183976,
        )

    @app.get(f"/{VERSION}/me")
    def me(version: str):
        token = request.args.get("access_token", "")
        record = grants(app).token(token)
        if record is None:
            return oauth_exception(190, "Invalid OAuth access token - Cannot parse access token")
        if config.app_secret_required:
            expected = hmac.new(
                config.client_secret.encode(), token.encode(), hashlib.sha256
            ).hexdigest()
            proof = request.args.get("appsecret_proof", "")
            if not proof:
                return oauth_exception(190, "API calls from the server require an appsecret_proof")
            if not hmac.compare_digest(proof, expected):
                return oauth_exception(190, "Invalid appsecret_proof provided in the API argument")
        identity = record["identity"]
        every = {
            "id": identity.subject,
            "name": f"{identity.given_name} {identity.family_name}",
            "first_name": identity.given_name,
            "last_name": identity.family_name,
        }
        if identity.email and "email" in record["scope"]:
            every["email"] = identity.email
        wanted = request.args.get("fields", "id,name").split(",")
        return jsonify({k: v for k, v in every.items() if k in wanted or k == "id"})

    return app

"""A fake VK ID (``id.vk.com``): reference §2 and §8 "VK ID".

* ``GET /authorize`` requires ``code_challenge`` with method ``s256`` (the Android doc's
  ``S256`` too) and refuses a ``code_verifier`` in the same request; the callback adds
  ``device_id``, ``expires_in`` and ``type=code_v2``.
* ``POST /oauth2/auth`` merges query and body (the web SDK puts all but ``code`` in the
  query), checks the verifier's form (43–128 of ``[A-Za-z0-9_-]``) and value, the
  ``device_id`` the code was issued to (assumed, unconfirmed), echoes ``state`` and answers an
  ``id_token`` JWT and an integer ``user_id``.
* ``POST /oauth2/user_info`` (POST only) takes ``client_id`` and ``access_token`` in the form
  body and answers ``{"user": {"user_id": "<string>", …}}``; ``email``/``phone`` only with
  their scope, the phone as digits without ``+``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import time
from urllib.parse import urlencode

from flask import Flask, jsonify, request
from joserfc import jwt
from joserfc.jwk import OctKey

from social_fakes.common import (
    FakeConfig,
    base_app,
    chosen_identity,
    error_page,
    form_and_query,
    grants,
    pick_page,
)

VERIFIER = re.compile(r"[A-Za-z0-9_-]{43,128}")
TITLES = {"vkid": "VK ID", "mail_ru": "Mail (через VK ID)", "ok_ru": "OK (через VK ID)"}


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def create_app(config: FakeConfig) -> Flask:
    app = base_app("vkid", config)
    id_token_key = OctKey.generate_key(256)

    def oauth_error(error: str, description: str, status: int = 400, state: str | None = None):
        body = {"error": error, "error_description": description}
        if state is not None:
            body["state"] = state
        return jsonify(body), status

    @app.route("/authorize", methods=["GET", "POST"])
    def authorize():
        q = request.args
        provider = q.get("provider", "vkid")
        title = TITLES.get(provider, "VK ID")
        if q.get("client_id") != config.client_id:
            return error_page(title, "Неизвестное приложение (client_id).")
        redirect_uri = q.get("redirect_uri", "")
        if redirect_uri not in config.redirect_uris:
            return error_page(title, "redirect_uri не совпадает с адресом в настройках.")

        def back(**params: str):
            sep = "&" if "?" in redirect_uri else "?"
            return "", 302, {"Location": f"{redirect_uri}{sep}{urlencode(params)}"}

        state = q.get("state", "")
        if q.get("response_type") != "code" or not state:
            return back(error="invalid_request", error_description="response_type, state")
        if not q.get("code_challenge") or q.get("code_challenge_method") not in ("s256", "S256"):
            return back(
                error="invalid_request", error_description="code_challenge required", state=state
            )
        if "code_verifier" in q:
            return back(
                error="invalid_request",
                error_description="code_verifier and code_challenge in one request",
                state=state,
            )
        scope = q.get("scope") or "vkid.personal_info"
        if request.method == "GET":
            return pick_page(title, config.client_id, scope, config)
        if request.form.get("decision") != "allow":
            return back(error="access_denied", error_description="User denied access", state=state)
        identity = chosen_identity(config, request.form)
        if identity is None:
            return pick_page(title, config.client_id, scope, config, "Выберите или введите имя.")
        device_id = secrets.token_urlsafe(16)
        code = grants(app).issue_code(
            client_id=config.client_id,
            redirect_uri=redirect_uri,
            challenge=q["code_challenge"],
            device_id=device_id,
            scope=scope.split(),
            identity=identity,
        )
        return back(
            code=code,
            state=state,
            device_id=device_id,
            expires_in=str(config.code_ttl),
            type="code_v2",
        )

    @app.post("/oauth2/auth")
    def token():
        p = form_and_query()
        state = p.get("state")
        if p.get("grant_type") != "authorization_code":
            return oauth_error("invalid_request", "grant_type", state=state)
        if p.get("client_id") != config.client_id:
            return oauth_error("invalid_client", "unknown client_id", 401, state)
        for name in ("code", "device_id", "redirect_uri", "state", "code_verifier"):
            if not p.get(name):
                return oauth_error("invalid_request", f"{name} is missing", state=state)
        if not VERIFIER.fullmatch(p["code_verifier"]):
            return oauth_error("invalid_request", "code_verifier is malformed", state=state)
        record, why = grants(app).redeem(p["code"])
        if record is None:
            return oauth_error("invalid_grant", f"code is {why}", state=state)
        if record["device_id"] != p["device_id"]:
            return oauth_error("invalid_grant", "code was issued to another device", state=state)
        if record["redirect_uri"] != p["redirect_uri"]:
            return oauth_error("invalid_grant", "redirect_uri mismatch", state=state)
        if s256(p["code_verifier"]) != record["challenge"]:
            return oauth_error("invalid_grant", "code_verifier mismatch", state=state)
        identity = record["identity"]
        access = grants(app).issue_token(
            client_id=config.client_id, identity=identity, scope=record["scope"]
        )
        now = int(time.time())
        id_token = jwt.encode(
            {"alg": "HS256"},
            {
                "iss": "VK",
                "sub": int(identity.subject),
                "app": config.client_id,
                "exp": now + config.token_ttl,
                "iat": now,
            },
            id_token_key,
        )
        return jsonify(
            access_token=access,
            refresh_token=secrets.token_urlsafe(32),
            id_token=id_token,
            token_type="Bearer",
            expires_in=config.token_ttl,
            user_id=int(identity.subject),
            state=state,
            scope=" ".join(record["scope"]),
        )

    @app.post("/oauth2/user_info")
    def user_info():
        record = grants(app).token(request.form.get("access_token"))
        if record is None:
            return oauth_error("invalid_token", "access_token is missing or invalid", 401)
        if request.form.get("client_id") != record["client_id"]:
            return oauth_error("invalid_client", "client_id does not own the token", 401)
        identity = record["identity"]
        user = {
            "user_id": identity.subject,
            "first_name": identity.given_name,
            "last_name": identity.family_name,
            "avatar": "",
            "sex": 0,
            "verified": False,
            "birthday": "",
        }
        if "email" in record["scope"] and identity.email:
            user["email"] = identity.email
        if "phone" in record["scope"] and identity.phone:
            user["phone"] = identity.phone.lstrip("+")
        return jsonify(user=user)

    @app.post("/oauth2/logout")
    @app.post("/oauth2/revoke")
    def revoke():
        return jsonify(response=1)

    return app

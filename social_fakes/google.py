"""A fake Google (OpenID Connect): reference §5 and §8 "Google".

* ``/.well-known/openid-configuration`` (issuer: the fake's own URL), ``/oauth2/v3/certs``
  (an RS256 key with a ``kid``), ``/o/oauth2/v2/auth``, ``POST /token``, ``/v1/userinfo``.
* The ID token: ``iss`` the issuer — or, for an identity flagged ``legacy_issuer``, the legacy
  spelling without ``https://``/``http://`` as Google still issues ``accounts.google.com`` —,
  ``aud``/``azp`` the client, ``nonce`` as sent, ``iat``/``exp``, ``email_verified`` true
  unless the identity is flagged ``unverified_email``.
* PKCE S256 and plain; ``refresh_token`` only with ``access_type=offline``; client
  credentials in the body or HTTP Basic.
* ``id_token_claims`` (tests) lays claims over the next ID tokens: a foreign ``aud`` or
  ``iss`` signed with the real key.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from urllib.parse import urlencode

from flask import Flask, jsonify, request
from joserfc import jwt
from joserfc.jwk import RSAKey

from social_fakes.common import FakeConfig, base_app, chosen_identity, error_page, grants, pick_page

TITLE = "Google"


def create_app(config: FakeConfig) -> Flask:
    app = base_app("google", config)
    key = RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(8), "use": "sig"})

    def issuer() -> str:
        return request.url_root.rstrip("/")  # with the /google prefix when served under one

    def oauth_error(error: str, description: str, status: int = 400):
        return jsonify(error=error, error_description=description), status

    @app.get("/.well-known/openid-configuration")
    def discovery():
        base = issuer()
        return jsonify(
            issuer=base,
            authorization_endpoint=f"{base}/o/oauth2/v2/auth",
            token_endpoint=f"{base}/token",
            userinfo_endpoint=f"{base}/v1/userinfo",
            jwks_uri=f"{base}/oauth2/v3/certs",
            response_types_supported=["code", "token", "id_token", "code id_token"],
            subject_types_supported=["public"],
            id_token_signing_alg_values_supported=["RS256"],
            scopes_supported=["openid", "email", "profile"],
            token_endpoint_auth_methods_supported=["client_secret_post", "client_secret_basic"],
            code_challenge_methods_supported=["plain", "S256"],
            claims_supported=[
                "aud",
                "email",
                "email_verified",
                "exp",
                "family_name",
                "given_name",
                "iat",
                "iss",
                "name",
                "picture",
                "sub",
            ],
        )

    @app.get("/oauth2/v3/certs")
    def certs():
        return jsonify(keys=[key.as_dict(private=False, alg="RS256")])

    @app.route("/o/oauth2/v2/auth", methods=["GET", "POST"])
    def authorize():
        q = request.args
        if q.get("client_id") != config.client_id:
            return error_page(TITLE, "Ошибка 401: invalid_client. The OAuth client was not found.")
        redirect_uri = q.get("redirect_uri", "")
        if redirect_uri not in config.redirect_uris:
            return error_page(TITLE, "Ошибка 400: redirect_uri_mismatch.")

        def back(**params: str):
            if "state" in q:
                params["state"] = q["state"]
            sep = "&" if "?" in redirect_uri else "?"
            return "", 302, {"Location": f"{redirect_uri}{sep}{urlencode(params)}"}

        scope = q.get("scope", "").split()
        if q.get("response_type") != "code":
            return back(error="unsupported_response_type")
        if "openid" not in scope:
            return back(error="invalid_scope")
        method = q.get("code_challenge_method", "plain")
        if q.get("code_challenge") and method not in ("S256", "plain"):
            return back(error="invalid_request")
        if request.method == "GET":
            return pick_page(TITLE, config.client_id, " ".join(scope), config)
        if request.form.get("decision") != "allow":
            return back(error="access_denied")
        identity = chosen_identity(config, request.form)
        if identity is None:
            return pick_page(TITLE, config.client_id, " ".join(scope), config, "Выберите имя.")
        code = grants(app).issue_code(
            redirect_uri=redirect_uri,
            challenge=q.get("code_challenge"),
            method=method,
            nonce=q.get("nonce"),
            offline=q.get("access_type") == "offline",
            scope=scope,
            identity=identity,
        )
        return back(code=code, scope=" ".join(scope), authuser="0", prompt="consent")

    @app.post("/token")
    def token():
        client_id = request.form.get("client_id")
        client_secret = request.form.get("client_secret")
        if request.authorization and request.authorization.type == "basic":
            client_id = request.authorization.username
            client_secret = request.authorization.password
        if (client_id, client_secret) != (config.client_id, config.client_secret):
            return oauth_error("invalid_client", "Unauthorized", 401)
        if request.form.get("grant_type") != "authorization_code":
            return oauth_error("unsupported_grant_type", "Invalid grant_type")
        record, why = grants(app).redeem(request.form.get("code", ""))
        if record is None:
            return oauth_error(
                "invalid_grant", "Malformed auth code." if why == "unknown" else "Bad Request"
            )
        if request.form.get("redirect_uri") != record["redirect_uri"]:
            return oauth_error("redirect_uri_mismatch", "Bad Request")
        if record["challenge"]:
            verifier = request.form.get("code_verifier", "")
            if record["method"] == "S256":
                digest = hashlib.sha256(verifier.encode()).digest()
                verifier = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
            if not verifier or verifier != record["challenge"]:
                return oauth_error("invalid_grant", "Invalid code verifier.")
        identity = record["identity"]
        now = int(time.time())
        iss = issuer()
        if "legacy_issuer" in identity.flags:
            iss = iss.partition("://")[2]  # as Google's "accounts.google.com"
        claims = {
            "iss": iss,
            "azp": config.client_id,
            "aud": config.client_id,
            "sub": identity.subject,
            "iat": now,
            "exp": now + 3600,
            "name": f"{identity.given_name} {identity.family_name}",
            "given_name": identity.given_name,
            "family_name": identity.family_name,
            "locale": "ru",
        }
        if identity.email and "email" in record["scope"]:
            claims["email"] = identity.email
            claims["email_verified"] = "unverified_email" not in identity.flags
        if record["nonce"]:
            claims["nonce"] = record["nonce"]
        claims.update(config.id_token_claims)
        id_token = jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)
        body = {
            "access_token": grants(app).issue_token(identity=identity, claims=claims),
            "expires_in": 3599,
            "id_token": id_token,
            "scope": " ".join(record["scope"]),
            "token_type": "Bearer",
        }
        if record["offline"]:
            body["refresh_token"] = grants(app).issue_token(refresh=True)
        return jsonify(body)

    @app.get("/v1/userinfo")
    def userinfo():
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        record = grants(app).token(value) if scheme.lower() == "bearer" else None
        if record is None or "claims" not in record:
            return oauth_error("invalid_request", "Invalid Credentials", 401)
        wanted = ("sub", "name", "given_name", "family_name", "email", "email_verified", "locale")
        return jsonify({k: v for k, v in record["claims"].items() if k in wanted})

    return app

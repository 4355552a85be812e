"""OpenID Connect Discovery 1.0 §3, RFC 8414, and the JWK Set."""

from __future__ import annotations

import json

from flask import Blueprint, Response

from idp.services.keys import JWKS_MAX_AGE
from idp.web import services, settings

bp = Blueprint("discovery", __name__)


def metadata() -> dict:
    s = settings()
    iss = s.issuer
    auth_methods = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]
    return {
        "issuer": iss,
        "authorization_endpoint": f"{iss}/authorize",
        "token_endpoint": f"{iss}/token",
        "userinfo_endpoint": f"{iss}/userinfo",
        "jwks_uri": f"{iss}/jwks.json",
        "revocation_endpoint": f"{iss}/revoke",
        "introspection_endpoint": f"{iss}/introspect",
        "end_session_endpoint": f"{iss}/logout",
        "scopes_supported": list(s.scopes_supported),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
        "userinfo_signing_alg_values_supported": [],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256", "PS256", "EdDSA"],
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_methods_supported": auth_methods[:3],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "acr",
            "amr",
            "sid",
            "at_hash",
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "locale",
            "updated_at",
            "email",
            "email_verified",
            "phone_number",
            "phone_number_verified",
        ],
        "acr_values_supported": ["urn:elk:loa:1"],
        "prompt_values_supported": ["none", "login", "consent"],
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
        "backchannel_logout_supported": True,
        "backchannel_logout_session_supported": True,
        "ui_locales_supported": ["ru", "en"],
        "resource_indicators_supported": bool(s.resources),
    }


# Serialised once per process: the metadata depends only on the settings (fixed at start),
# and the JWK Set only on the published keys (KeyService hands out a new dict per change).
_documents: dict[str, tuple[object, bytes]] = {}


def _json(name: str, source: object, build) -> bytes:
    cached = _documents.get(name)
    if cached is None or cached[0] is not source:
        # As jsonify writes it: sorted keys, compact, a final newline.
        text = json.dumps(build(), ensure_ascii=False, sort_keys=True, separators=(",", ":"))
        cached = (source, (text + "\n").encode())
        _documents[name] = cached
    return cached[1]


def _response(body: bytes, max_age: int) -> Response:
    response = Response(body, mimetype="application/json")
    response.headers["Cache-Control"] = f"public, max-age={max_age}"
    return response


@bp.get("/.well-known/openid-configuration")
def openid_configuration():
    return _response(_json("metadata", settings(), metadata), 300)


@bp.get("/.well-known/oauth-authorization-server")
def oauth_metadata():
    return openid_configuration()


@bp.get("/jwks.json")
def jwks():
    keys = services().keys.jwks()
    return _response(_json("jwks", keys, lambda: keys), JWKS_MAX_AGE)

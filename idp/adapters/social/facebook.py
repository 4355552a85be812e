"""Facebook Login for the web: plain OAuth 2.0 and the versioned Graph API.

Protocol facts (../shared/reference/social-providers.md §6; developers.facebook.com
facebook-login/guides/advanced/manual-flow, graph-api/guides/secure-requests,
graph-api/guides/error-handling):

* Every path carries the API version (IDP_SOCIAL_FACEBOOK_API_VERSION, e.g. ``v24.0``):
  ``www.facebook.com/v24.0/dialog/oauth``, ``graph.facebook.com/v24.0/…``.
* Scopes are separated by commas (``email,public_profile``); no PKCE or nonce for web login
  (its OIDC flow is "in testing").
* Cancelling ends at the callback with ``error=access_denied&error_code=200&
  error_description=Permissions+error&error_reason=user_denied``; other dialog failures
  carry only ``error_code``/``error_message`` (social-core facebook.py checks both).
* The token endpoint is a **GET** with the secret in the query; it answers JSON since
  Graph API v2.3 (the query-string answers of older versions are not supported).
* Graph calls carry ``appsecret_proof = HMAC-SHA256(key=app secret, msg=access token)``
  (hex), required when the app has "Require App Secret" on.
* Errors: ``{"error": {"message", "type": "OAuthException", "code", "error_subcode",
  "fbtrace_id"}}``. Token endpoint: code 100 ("This authorization code has been used." /
  "…has expired.", as reported in facebook-csharp-sdk#388 and facebook-cf-sdk#57; the fake's
  subcodes 36007/36008/36009 are unconfirmed) → ``invalid_grant``; code 1 "Error validating
  client secret" → ``config``; 2, 4, 17, 32, 613 (temporary, throttling; graph-api error
  handling) → ``unavailable``. Graph: 190 (bad token, bad proof) and 100 → ``bad_response``.
* ``id`` is app-scoped and the stable subject; ``email`` may be absent and is unverified.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import urlencode

from idp.adapters.social.base import HttpClient, check_callback, require_dict, subject_of, text
from idp.config import SocialProviderSettings
from idp.domain.social import SocialError, SocialProfile

TEMPORARY = {2, 4, 17, 32, 613}


def appsecret_proof(access_token: str, app_secret: str) -> str:
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


def graph_error(body: dict) -> tuple[int, str] | None:
    error = body.get("error")
    if not isinstance(error, dict):
        return None
    code = error.get("code")
    return (code if isinstance(code, int) else -1), str(error.get("message", ""))


class FacebookProvider:
    name = "facebook"

    def __init__(self, settings: SocialProviderSettings, http: HttpClient) -> None:
        self.client_id = settings.client_id
        self.client_secret = settings.client_secret
        self.dialog = f"{settings.url('www')}/{settings.api_version}/dialog/oauth"
        self.graph = f"{settings.url('graph')}/{settings.api_version}"
        self.http = http

    def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        query = {
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "scope": "email,public_profile",
            "response_type": "code",
        }
        return f"{self.dialog}?{urlencode(query)}"

    def complete(
        self,
        params: Mapping[str, str],
        *,
        redirect_uri: str,
        state: str,
        nonce: str,
        code_verifier: str,
    ) -> SocialProfile:
        if params.get("error_code") and not params.get("error"):
            raise SocialError("bad_response", f"Facebook dialog error {params['error_code']}")
        code = check_callback(params, state=state)
        _, body = self.http.call(
            "GET",
            f"{self.graph}/oauth/access_token",
            params={
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "client_secret": self.client_secret,
                "code": code,
            },
        )
        body = require_dict(body, "Facebook token")
        error = graph_error(body)
        if error is not None:
            number, message = error
            kind = (
                "config"
                if number == 1
                else "unavailable"
                if number in TEMPORARY
                else "invalid_grant"
            )
            raise SocialError(kind, f"Facebook token: {number} {message}")
        access_token = text(body.get("access_token"))
        if access_token is None:
            raise SocialError("bad_response", "Facebook token response without access_token")
        return self._profile(access_token)

    def _profile(self, access_token: str) -> SocialProfile:
        _, body = self.http.call(
            "GET",
            f"{self.graph}/me",
            params={
                "fields": "id,first_name,last_name,email",
                "access_token": access_token,
                "appsecret_proof": appsecret_proof(access_token, self.client_secret),
            },
        )
        me = require_dict(body, "Facebook /me")
        error = graph_error(me)
        if error is not None:
            raise SocialError("bad_response", f"Facebook /me: {error[0]} {error[1]}")
        return SocialProfile(
            provider=self.name,
            subject=subject_of(me.get("id"), "Facebook /me"),
            given_name=text(me.get("first_name")),
            family_name=text(me.get("last_name")),
            email=text(me.get("email")),
            email_verified=False,
            phone=None,
            raw=me,
        )

"""OK.ru (Одноклассники): plain OAuth 2.0 at ``connect.ok.ru`` plus the signed REST API at
``api.ok.ru``.

Protocol facts (../shared/reference/social-providers.md §3; apiok.ru/en/ext/oauth/server,
apiok.ru/en/dev/methods, apiok.ru/en/ext/oauth/permissions):

* Three credentials: the application id (``client_id``), the public key
  (``application_key``, sent with every API call) and the secret key (``client_secret``).
* Scopes are separated by ``;`` (``VALUABLE_ACCESS;GET_EMAIL``); ``GET_EMAIL`` is granted to
  an application by request to api-support@ok.ru, and without it there is no ``email``.
* No PKCE and no nonce are documented.
* ``POST /oauth/token.do`` answers ``{"access_token", "token_type": "session",
  "refresh_token", "expires_in"}``; its error shape is undocumented, so any ``error`` key is an
  error (mapped as RFC 6749 §5.2).
* ``users.getCurrentUser`` is signed: ``secret = md5(access_token + client_secret)``,
  ``sig = md5(sorted k=v of every parameter but access_token/session_key/sig, joined with no
  separator, + secret)``, both lowercase hex.
* API errors come as HTTP 200 ``{"error_code", "error_msg", "error_data"}``: 104
  PARAM_SIGNATURE, 102 PARAM_SESSION_EXPIRED (apiok.ru/en/dev/errors).
* ``uid`` is a string; social-core URL-unquotes the names (``social_core/backends/
  odnoklassniki.py``), as done here. No verified flag, no phone.
* The denial redirect carries ``error=access_denied`` (RFC 6749 §4.1.2.1; OK's own page
  for it is not public — assumed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from urllib.parse import unquote, urlencode

from idp.adapters.social.base import (
    HttpClient,
    check_callback,
    oauth_error_kind,
    require_dict,
    subject_of,
    text,
)
from idp.config import SocialProviderSettings
from idp.domain.social import SocialError, SocialProfile

SCOPE = "VALUABLE_ACCESS;GET_EMAIL"
FIELDS = "uid,first_name,last_name,name,email,has_email"


def md5_hex(value: str) -> str:
    return hashlib.md5(value.encode("utf-8")).hexdigest()  # noqa: S324 - OK's signature scheme


def signature(params: Mapping[str, str], access_token: str, client_secret: str) -> str:
    """OK's ``sig`` of an API call (apiok.ru/en/dev/methods, "Request signature")."""
    secret = md5_hex(access_token + client_secret)
    signed = {k: v for k, v in params.items() if k not in ("access_token", "session_key", "sig")}
    joined = "".join(f"{k}={signed[k]}" for k in sorted(signed))
    return md5_hex(joined + secret)


class OkProvider:
    name = "ok"

    def __init__(self, settings: SocialProviderSettings, http: HttpClient) -> None:
        self.client_id = settings.client_id
        self.client_secret = settings.client_secret
        self.application_key = settings.application_key
        self.connect = settings.url("connect")
        self.api = settings.url("api")
        self.http = http

    def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        query = {
            "client_id": self.client_id,
            "scope": SCOPE,
            "response_type": "code",
            "redirect_uri": redirect_uri,
            "layout": "w",
            "state": state,
        }
        return f"{self.connect}/oauth/authorize?{urlencode(query)}"

    def complete(
        self,
        params: Mapping[str, str],
        *,
        redirect_uri: str,
        state: str,
        nonce: str,
        code_verifier: str,
    ) -> SocialProfile:
        code = check_callback(params, state=state)
        _, body = self.http.call(
            "POST",
            f"{self.api}/oauth/token.do",
            data={
                "code": code,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "redirect_uri": redirect_uri,
                "grant_type": "authorization_code",
            },
        )
        body = require_dict(body, "OK token")
        if "error" in body:
            raise SocialError(oauth_error_kind(str(body["error"])), f"OK token: {body['error']}")
        access_token = text(body.get("access_token"))
        if access_token is None:
            raise SocialError("bad_response", "OK token response without access_token")
        return self._profile(access_token)

    def _profile(self, access_token: str) -> SocialProfile:
        query = {
            "application_key": self.application_key,
            "fields": FIELDS,
            "format": "json",
            "method": "users.getCurrentUser",
        }
        query["sig"] = signature(query, access_token, self.client_secret)
        query["access_token"] = access_token
        _, body = self.http.call("GET", f"{self.api}/fb.do", params=query)
        user = require_dict(body, "OK users.getCurrentUser")
        if "error_code" in user:
            raise SocialError(
                "bad_response", f"OK API error {user['error_code']}: {user.get('error_msg')}"
            )
        given, family = text(user.get("first_name")), text(user.get("last_name"))
        return SocialProfile(
            provider=self.name,
            subject=subject_of(user.get("uid"), "OK users.getCurrentUser"),
            given_name=unquote(given) if given else None,
            family_name=unquote(family) if family else None,
            email=text(user.get("email")),
            email_verified=False,
            phone=None,
            raw=user,
        )

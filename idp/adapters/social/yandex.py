"""Yandex ID (``oauth.yandex.ru`` and ``login.yandex.ru``): plain OAuth 2.0 with optional PKCE.

Protocol facts (../shared/reference/social-providers.md §4; Yandex ID docs
yandex.com/dev/id/doc/en/codes/code-url, …/tokens/refresh-client, …/user-information):

* ``/authorize`` takes PKCE (``code_challenge`` S256), which we always send. No ``scope`` is
  sent: an application may ask for "all access rights specified when registering the app"
  (yandex.ru/dev/id/doc/en/concepts/ya-oauth-intro, "Authorization procedure"), and the
  glossary says tokens always carry the rights chosen at registration, so a scope the
  application lacks can never break the sign-in; register it with ``login:info``,
  ``login:email`` and ``login:default_phone``.
* ``POST /token`` authenticates the client with HTTP Basic (a Basic header overrides body
  credentials) and needs no ``redirect_uri``; errors are RFC 6749 §5.2 JSON.
* ``GET https://login.yandex.ru/info?format=json`` wants ``Authorization: OAuth <token>`` —
  the scheme is ``OAuth``, not ``Bearer``. Its ``client_id`` names the application the token
  was issued to: a token of another application is refused (mix-up, token substitution).
* ``default_email`` may be empty (an account made through a social network) while
  ``emails[]`` holds the address: fall back to ``emails[0]``. No verified flag: the e-mail is
  unverified here (the contract, :class:`idp.domain.social.SocialProfile`, trusts Google only).
* ``default_phone`` is ``{"id": …, "number": "+7…"}``, present only with
  ``login:default_phone`` and at Yandex's discretion.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from idp.adapters.social.base import (
    HttpClient,
    check_callback,
    oauth_error_kind,
    phone_e164,
    require_dict,
    s256,
    subject_of,
    text,
)
from idp.config import SocialProviderSettings
from idp.domain.social import SocialError, SocialProfile


class YandexProvider:
    name = "yandex"

    def __init__(self, settings: SocialProviderSettings, http: HttpClient) -> None:
        self.client_id = settings.client_id
        self.client_secret = settings.client_secret
        self.oauth = settings.url("oauth")
        self.login = settings.url("login")
        self.http = http

    def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": s256(code_verifier),
            "code_challenge_method": "S256",
        }
        return f"{self.oauth}/authorize?{urlencode(query)}"

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
        status, body = self.http.call(
            "POST",
            f"{self.oauth}/token",
            auth=(self.client_id, self.client_secret),
            data={"grant_type": "authorization_code", "code": code, "code_verifier": code_verifier},
        )
        body = require_dict(body, "Yandex token")
        if "error" in body or status != 200:
            error = str(body.get("error", status))
            raise SocialError(oauth_error_kind(error), f"Yandex token: {error}")
        access_token = text(body.get("access_token"))
        if access_token is None:
            raise SocialError("bad_response", "Yandex token response without access_token")
        return self._profile(access_token)

    def _profile(self, access_token: str) -> SocialProfile:
        status, body = self.http.call(
            "GET",
            f"{self.login}/info",
            params={"format": "json"},
            headers={"Authorization": f"OAuth {access_token}"},
        )
        if status != 200:
            raise SocialError("bad_response", f"Yandex info: HTTP {status}")
        info = require_dict(body, "Yandex info")
        if info.get("client_id") != self.client_id:
            raise SocialError("bad_response", "Yandex info: the token is another application's")
        emails = info.get("emails") if isinstance(info.get("emails"), list) else []
        email = text(info.get("default_email")) or (text(emails[0]) if emails else None)
        phone = info.get("default_phone")
        return SocialProfile(
            provider=self.name,
            subject=subject_of(info.get("id"), "Yandex info"),
            given_name=text(info.get("first_name")),
            family_name=text(info.get("last_name")),
            email=email,
            email_verified=False,
            phone=phone_e164(phone.get("number")) if isinstance(phone, dict) else None,
            raw=info,
        )

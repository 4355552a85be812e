"""OAuth Mail (``oauth.mail.ru``), for an application registered there before July 2025.

A site new since 1 July 2025 cannot register an OAuth Mail application and reaches Mail
accounts through VK ID instead (IDP_SOCIAL_MAIL_MODE=vkid, :mod:`idp.adapters.social.vkid`
with ``provider=mail_ru``); which shape is used is configuration only.

Protocol facts (../shared/reference/social-providers.md §2a; VK ID «OAuth Mail»,
id.vk.com/about/business/go/docs/ru/vkid/latest/oauth/oauth-mail/index; social-core
``social_core/backends/mailru.py`` ``MRGOAuth2``):

* ``GET /login`` with ``response_type=code``, ``client_id``, ``redirect_uri`` (matched exactly,
  trailing ``/`` included), ``scope=userinfo``, ``state``; PKCE is documented and sent (S256).
* ``POST /token``, form: ``grant_type``, ``code``, ``redirect_uri``, ``code_verifier`` and the
  client credentials in the body, as social-core's BaseOAuth2 sends them.
* ``GET /userinfo?access_token=…`` → ``id``, ``email``, ``first_name``, ``last_name``, …. The
  identity is keyed on ``id`` (social-core keys it on ``email``, which we never do). No
  verified flag is documented: the e-mail is unverified. No phone.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlencode

from idp.adapters.social.base import (
    HttpClient,
    check_callback,
    oauth_error_kind,
    require_dict,
    s256,
    subject_of,
    text,
)
from idp.config import SocialProviderSettings
from idp.domain.social import SocialError, SocialProfile


class MailOAuthProvider:
    name = "mail"

    def __init__(self, settings: SocialProviderSettings, http: HttpClient) -> None:
        self.client_id = settings.client_id
        self.client_secret = settings.client_secret
        self.base = settings.url("base")
        self.http = http

    def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": "userinfo",
            "state": state,
            "code_challenge": s256(code_verifier),
            "code_challenge_method": "S256",
        }
        return f"{self.base}/login?{urlencode(query)}"

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
            f"{self.base}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
            },
        )
        body = require_dict(body, "Mail token")
        if "error" in body:
            raise SocialError(oauth_error_kind(str(body["error"])), f"Mail token: {body['error']}")
        access_token = text(body.get("access_token"))
        if access_token is None:
            raise SocialError("bad_response", "Mail token response without access_token")
        _, info = self.http.call(
            "GET", f"{self.base}/userinfo", params={"access_token": access_token}
        )
        info = require_dict(info, "Mail userinfo")
        if "error" in info:
            raise SocialError("bad_response", f"Mail userinfo: {info['error']}")
        return SocialProfile(
            provider=self.name,
            subject=subject_of(info.get("id"), "Mail userinfo"),
            given_name=text(info.get("first_name")),
            family_name=text(info.get("last_name")),
            email=text(info.get("email")),
            email_verified=False,
            phone=None,
            raw=info,
        )

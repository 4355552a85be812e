"""VK ID (OAuth 2.1 at ``id.vk.com`` / ``id.vk.ru``): the «VK» button, and with
``provider=mail_ru`` the «@» button of a site whose Mail sign-in goes through VK ID.

Protocol facts (../shared/reference/social-providers.md §2; VK ID «Описание API»,
id.vk.com/about/business/go/docs/ru/vkid/latest/vk-id/connection/api-integration/api-description;
VKCOM/vkid-web-sdk src/auth/auth.ts):

* Not OIDC: no discovery, no JWKS, no nonce. The ``id_token`` it returns carries masked data
  only and is not used here; the profile comes from ``/oauth2/user_info``.
* PKCE is mandatory, with the method spelled lowercase ``s256`` as the web SDK sends it.
* The callback adds ``device_id`` (and ``expires_in``, ``type=code_v2``); the code exchange at
  ``POST /oauth2/auth`` must send it back, with ``state``, which VK echoes in the token
  response — the SDK refuses a mismatch, and so do we (``SocialError("state")``).
* No ``client_secret`` in the exchange: it is not among the documented parameters.
* ``user_id`` is an int in the token response and a string in ``user_info``; they must agree.
* ``phone`` comes as digits without ``+`` (``79991234567``); there is no e-mail-verified flag
  (``verified`` is the account's blue tick), so the e-mail is unverified.
* Errors are ``{"error", "error_description", "state"?}`` with ``invalid_request``,
  ``invalid_client``, ``invalid_token``, ``access_denied``, ``slow_down``,
  ``temporarily_unavailable``, ``server_error`` (vkid-dart-sdk vk_err_type.dart).
* Mail through VK ID: since 1 July 2025 new sites reach Mail accounts as an additional
  sign-in method of their VK ID application; the web SDK's ``OAuthName.MAIL = 'mail_ru'``
  (src/widgets/oauthList/types.ts) goes to ``/authorize`` as ``provider=mail_ru``.
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

SCOPE = "vkid.personal_info email phone"


class VkIdProvider:
    """:class:`idp.ports.SocialProvider` for VK ID (``name="vkid"``) and Mail through VK ID
    (``name="mail"``, ``oauth_provider="mail_ru"``)."""

    def __init__(
        self,
        settings: SocialProviderSettings,
        http: HttpClient,
        *,
        name: str = "vkid",
        oauth_provider: str | None = None,
    ) -> None:
        self.name = name
        self.client_id = settings.client_id
        self.base = settings.url("base")
        self.http = http
        self.oauth_provider = oauth_provider

    def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": s256(code_verifier),
            "code_challenge_method": "s256",
            "scope": SCOPE,
        }
        if self.oauth_provider:
            query["provider"] = self.oauth_provider
        return f"{self.base}/authorize?{urlencode(query)}"

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
        device_id = params.get("device_id")
        if not device_id:
            raise SocialError("bad_response", "VK ID callback without device_id")
        token = self._exchange(code, device_id, redirect_uri, state, code_verifier)
        return self._profile(token)

    def _exchange(
        self, code: str, device_id: str, redirect_uri: str, state: str, code_verifier: str
    ) -> dict:
        _, body = self.http.call(
            "POST",
            f"{self.base}/oauth2/auth",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": code_verifier,
                "client_id": self.client_id,
                "device_id": device_id,
                "redirect_uri": redirect_uri,
                "state": state,
            },
        )
        body = require_dict(body, "VK ID token")
        if "error" in body:
            raise SocialError(oauth_error_kind(str(body["error"])), f"VK ID token: {body['error']}")
        if body.get("state") != state:
            raise SocialError("state", "VK ID token response echoes another state")
        if not text(body.get("access_token")):
            raise SocialError("bad_response", "VK ID token response without access_token")
        subject_of(body.get("user_id"), "VK ID token")
        return body

    def _profile(self, token: dict) -> SocialProfile:
        _, body = self.http.call(
            "POST",
            f"{self.base}/oauth2/user_info",
            data={"client_id": self.client_id, "access_token": token["access_token"]},
        )
        body = require_dict(body, "VK ID user_info")
        if "error" in body:
            raise SocialError("bad_response", f"VK ID user_info: {body['error']}")
        user = require_dict(body.get("user"), "VK ID user_info.user")
        subject = subject_of(user.get("user_id"), "VK ID user_info")
        if subject != str(token["user_id"]):
            raise SocialError("bad_response", "VK ID user_info is about another user")
        return SocialProfile(
            provider=self.name,
            subject=subject,
            given_name=text(user.get("first_name")),
            family_name=text(user.get("last_name")),
            email=text(user.get("email")),
            email_verified=False,
            phone=phone_e164(user.get("phone")),
            raw=user,
        )

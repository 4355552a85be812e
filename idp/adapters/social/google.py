"""Google: OpenID Connect with discovery, JWKS and an ID token validated claim by claim.

Protocol facts (../shared/reference/social-providers.md §5; developers.google.com/identity/
openid-connect/openid-connect and …/reference; OIDC Core §3.1.3.7 "ID Token Validation"):

* Everything comes from the discovery document (IDP_SOCIAL_GOOGLE_DISCOVERY_URL, OIDC
  Discovery §4): authorization, token and JWKS endpoints, and the issuer. It is fetched once
  and kept; the JWKS is fetched again only for a ``kid`` we do not know (Google rotates keys).
* The authorization request carries ``nonce`` and PKCE S256 (``code_challenge_methods_supported``
  lists ``plain`` and ``S256``); the token endpoint takes client_secret_post.
* The ID token must be RS256 with a ``kid`` from the JWKS (RFC 8725 §3.1: one algorithm, no
  ``none``); then ``iss`` must be the issuer, where Google also issues the legacy spelling
  without the scheme (``accounts.google.com``, "The value of iss in the ID token is equal to
  accounts.google.com or https://accounts.google.com"); ``aud`` must contain our client id and,
  with several audiences, ``azp`` must be it (OIDC Core §3.1.3.7 items 3–5); ``nonce`` must be
  the one we sent (item 11); ``exp``/``iat`` are checked with a minute of leeway.
  A foreign ``iss``, ``aud``, ``azp`` or ``nonce`` is ``SocialError("nonce")``.
* ``sub`` is the stable subject; ``email_verified`` is the only e-mail-verified assertion among
  the six providers. No phone.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from urllib.parse import urlencode

from joserfc import jws, jwt
from joserfc.errors import ClaimError, ExpiredTokenError, JoseError
from joserfc.jwk import JWKRegistry, Key

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

LEEWAY = 60
FOREIGN_CLAIMS = ("iss", "aud", "azp", "nonce")


class GoogleProvider:
    name = "google"

    def __init__(self, settings: SocialProviderSettings, http: HttpClient) -> None:
        self.client_id = settings.client_id
        self.client_secret = settings.client_secret
        self.discovery_url = settings.url("discovery")
        self.http = http
        self._lock = threading.Lock()
        self._metadata: dict | None = None
        self._keys: dict[str, Key] = {}

    def metadata(self) -> dict:
        """The discovery document (fetched once; a failed fetch is retried next time)."""
        if self._metadata is None:
            _, body = self.http.call("GET", self.discovery_url)
            body = require_dict(body, "Google discovery")
            needed = ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri")
            if not all(isinstance(body.get(k), str) and body[k] for k in needed):
                raise SocialError("bad_response", "Google discovery lacks an endpoint")
            with self._lock:
                self._metadata = body
        return self._metadata

    def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        query = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid email profile",
            "state": state,
            "nonce": nonce,
            "code_challenge": s256(code_verifier),
            "code_challenge_method": "S256",
        }
        return f"{self.metadata()['authorization_endpoint']}?{urlencode(query)}"

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
        metadata = self.metadata()
        _, body = self.http.call(
            "POST",
            metadata["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "code_verifier": code_verifier,
            },
        )
        body = require_dict(body, "Google token")
        if "error" in body:
            raise SocialError(
                oauth_error_kind(str(body["error"])), f"Google token: {body['error']}"
            )
        id_token = text(body.get("id_token"))
        if id_token is None:
            raise SocialError("bad_response", "Google token response without id_token")
        claims = self.validate(id_token, nonce)
        email_verified = claims.get("email_verified") in (True, "true")
        return SocialProfile(
            provider=self.name,
            subject=subject_of(claims.get("sub"), "Google ID token"),
            given_name=text(claims.get("given_name")),
            family_name=text(claims.get("family_name")),
            email=text(claims.get("email")),
            email_verified=email_verified and text(claims.get("email")) is not None,
            phone=None,
            raw=claims,
        )

    def validate(self, id_token: str, nonce: str) -> dict:
        """The ID token's claims after its signature and OIDC Core §3.1.3.7 checks."""
        try:
            header = jws.extract_compact(id_token.encode("ascii")).headers()
        except (JoseError, ValueError, TypeError, UnicodeError):
            raise SocialError("bad_response", "Google ID token is malformed") from None
        if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
            raise SocialError("bad_response", "Google ID token: not RS256 with a kid")
        key = self._key(header["kid"])
        try:
            claims = jwt.decode(id_token, key, algorithms=["RS256"]).claims
        except (JoseError, ValueError, TypeError):
            raise SocialError("bad_response", "Google ID token: bad signature") from None
        issuer = self.metadata()["issuer"]
        legacy = issuer.partition("://")[2]  # https://accounts.google.com → accounts.google.com
        registry = jwt.JWTClaimsRegistry(
            leeway=LEEWAY,
            iss={"essential": True, "values": [issuer, legacy]},
            aud={"essential": True, "value": self.client_id},
            nonce={"essential": True, "value": nonce},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise SocialError("bad_response", "Google ID token has expired") from None
        except ClaimError as exc:
            claim = getattr(exc, "claim", "")
            kind = "nonce" if claim in FOREIGN_CLAIMS else "bad_response"
            raise SocialError(kind, f"Google ID token: {claim} rejected") from None
        except (JoseError, ValueError, TypeError):
            raise SocialError("bad_response", "Google ID token claims rejected") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != self.client_id:
            raise SocialError("nonce", "Google ID token: azp is another client")
        return claims

    def _key(self, kid: str) -> Key:
        """The JWKS key ``kid``; an unknown kid fetches the JWKS again (a rotation)."""
        key = self._keys.get(kid)
        if key is not None:
            return key
        _, body = self.http.call("GET", self.metadata()["jwks_uri"])
        jwks = require_dict(body, "Google JWKS")
        keys: dict[str, Key] = {}
        for jwk in jwks.get("keys") or []:
            if not isinstance(jwk, dict) or jwk.get("kty") != "RSA" or "kid" not in jwk:
                continue
            try:
                keys[jwk["kid"]] = JWKRegistry.import_key(jwk)
            except (JoseError, ValueError, TypeError):
                continue
        with self._lock:
            self._keys = keys
        if kid not in keys:
            raise SocialError("bad_response", "Google ID token signed by an unknown key")
        return keys[kid]

"""Validation of a logout token (OpenID Connect Back-Channel Logout 1.0 §2.6).

The portal trusts only what it checked: the signature against the IdP's published keys
(JWKS), ``typ`` ``logout+jwt``, ``iss``, ``aud``, a recent ``iat``, ``exp`` when present, the
``events`` member, ``sid`` or ``sub``, the absence of ``nonce`` (§2.4: it keeps a logout token
from being replayed as an ID token) and a ``jti`` not seen before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
ALGORITHMS = ("ES256", "RS256")


class LogoutTokenInvalid(ValueError):
    """The logout token failed a check; the message says which (§2.8: answer 400)."""


@dataclass(frozen=True)
class LogoutRequest:
    sub: str | None
    sid: str | None


class LogoutTokenVerifier:
    def __init__(
        self,
        issuer: str,
        client_id: str,
        fetch_jwks: Callable[[bool], dict],
        clock: Callable[[], float] = time.time,
        max_age: int = 300,
        leeway: int = 30,
    ) -> None:
        self._issuer = issuer
        self._client_id = client_id
        self._fetch_jwks = fetch_jwks
        self._clock = clock
        self._max_age = max_age
        self._leeway = leeway
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def _decode(self, value: str):
        try:
            try:
                keys = KeySet.import_key_set(self._fetch_jwks(False))
                return jwt.decode(value, keys, algorithms=list(ALGORITHMS))
            except InvalidKeyIdError:
                # The IdP may have rotated its keys since the JWKS was cached.
                keys = KeySet.import_key_set(self._fetch_jwks(True))
                return jwt.decode(value, keys, algorithms=list(ALGORITHMS))
        except (JoseError, ValueError, TypeError) as exc:
            raise LogoutTokenInvalid(f"signature or format: {exc}") from None

    def verify(self, value: str) -> LogoutRequest:
        if not value or len(value) > 8192:
            raise LogoutTokenInvalid("logout_token is missing or too long")
        token = self._decode(value)
        if token.header.get("typ", "").lower() != "logout+jwt":
            raise LogoutTokenInvalid("typ must be logout+jwt")
        claims = token.claims
        now = self._clock()
        if claims.get("iss") != self._issuer:
            raise LogoutTokenInvalid("iss is not the IdP")
        aud = claims.get("aud")
        audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if self._client_id not in audiences:
            raise LogoutTokenInvalid("aud does not name this portal")
        iat = claims.get("iat")
        if not isinstance(iat, int | float) or isinstance(iat, bool):
            raise LogoutTokenInvalid("iat is missing")
        if iat > now + self._leeway or iat < now - self._max_age:
            raise LogoutTokenInvalid("iat is too far from now")
        exp = claims.get("exp")
        if exp is not None and (not isinstance(exp, int | float) or exp < now - self._leeway):
            raise LogoutTokenInvalid("the token has expired")
        events = claims.get("events")
        if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_EVENT), dict):
            raise LogoutTokenInvalid("events must hold the back-channel logout event")
        if "nonce" in claims:
            raise LogoutTokenInvalid("a logout token must not hold a nonce")
        sub, sid = claims.get("sub"), claims.get("sid")
        if not (isinstance(sub, str) and sub) and not (isinstance(sid, str) and sid):
            raise LogoutTokenInvalid("sub or sid is required")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise LogoutTokenInvalid("jti is required")
        self._remember(jti, now)
        return LogoutRequest(sub if isinstance(sub, str) else None, sid or None)

    def _remember(self, jti: str, now: float) -> None:
        """§2.6 step 7 (optional): refuse a token already used."""
        with self._lock:
            self._seen = {k: t for k, t in self._seen.items() if t > now - 2 * self._max_age}
            if jti in self._seen:
                raise LogoutTokenInvalid("this logout token was already used")
            self._seen[jti] = now

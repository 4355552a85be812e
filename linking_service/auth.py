"""Verification of the IdP's JWT access tokens: RFC 9068 §4, hardened per RFC 8725 (JWT BCP).

No gRPC here: the interceptor calls :meth:`TokenVerifier.verify` and maps ``Unauthenticated``
to ``UNAUTHENTICATED``. Every failure, a bug included, is ``Unauthenticated`` (fail closed).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import JWKRegistry, Key

from linking_service.domain import Unauthenticated

log = logging.getLogger(__name__)

MAX_TOKEN_BYTES = 8 * 1024  # far above a real token; bounds parsing work on hostile input
MAX_DOCUMENT_BYTES = 256 * 1024  # discovery and JWKS answers
# RFC 8725 §3.1, §3.4: an algorithm is bound to one key type (and curve), so a key is never
# used with an algorithm it was not made for. Only asymmetric algorithms: with a public JWKS an
# HMAC "secret" would be public (the RS256-to-HS256 confusion of RFC 8725 §2.1).
ALG_KEYS: dict[str, tuple[str, str | None]] = {
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "EdDSA": ("OKP", None),
    "Ed25519": ("OKP", "Ed25519"),
}
# RFC 9068 §2.1 and §4: explicit typing, so an ID token (typ JWT) is never taken for an access
# token (RFC 8725 §3.11, §3.12).
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
# Allow-list of header parameters. jku, x5u, jwk and x5c would let the token name or carry its
# own key (RFC 8725 §3.10); crit names extensions we do not implement (RFC 7515 §4.1.11).
ALLOWED_HEADERS = frozenset({"alg", "kid", "typ"})


@dataclass(frozen=True)
class Principal:
    """Who called: the subject and client of a verified access token (RFC 9068 §2.2)."""

    issuer: str
    subject: str
    client_id: str
    scopes: frozenset[str]
    claims: dict


def _deny(why: str) -> Unauthenticated:
    return Unauthenticated(f"invalid access token: {why}", reason="TOKEN_INVALID")


class TokenVerifier:
    """Verifies access tokens against the IdP's JWK Set, found through its discovery document.

    Keys are cached for ``cache_ttl`` seconds. A ``kid`` not in the cache triggers a refetch at
    most once per ``refresh_interval`` seconds, process-wide (one lock: concurrent callers wait
    for the one fetch instead of stampeding the IdP). If the IdP cannot be reached, keys already
    cached keep working past ``cache_ttl`` (stale-if-error) up to ``max_stale`` seconds, but an
    unknown ``kid`` never passes. A verified token is remembered by its SHA-256 (at most
    ``max_verified`` of them) until its ``exp`` or until the keys are refetched, whichever is
    first, so a stream of calls with one token checks its signature once.
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        allowed_algs: Sequence[str],
        http: requests.Session | None = None,
        cache_ttl: int = 300,
        refresh_interval: int = 30,
        timeout: float = 3.0,
        clock: Callable[[], float] = time.time,
        leeway: int = 30,
        max_stale: int = 24 * 3600,
        on_refresh: Callable[[bool], None] = lambda ok: None,
        max_verified: int = 10_000,
    ) -> None:
        """``on_refresh(ok)`` is told of every fetch of the keys (the metrics count them)."""
        unknown = sorted(set(allowed_algs) - set(ALG_KEYS))
        if not allowed_algs or unknown:
            raise ValueError(f"only asymmetric JWS algorithms can be allowed, not {unknown}")
        if urlsplit(issuer).scheme not in ("https", "http") or not audience:
            raise ValueError("issuer must be an http(s) URL and audience non-empty")
        self._issuer, self._audience, self._algs = issuer, audience, frozenset(allowed_algs)
        self._scheme = urlsplit(issuer).scheme
        self._http = http or requests.Session()
        self._ttl, self._interval, self._timeout = cache_ttl, refresh_interval, timeout
        self._clock, self._leeway, self._max_stale = clock, leeway, max_stale
        self._on_refresh = on_refresh
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[Key, dict]] = {}  # replaced whole, never mutated
        self._keys_at: float | None = None
        self._jwks_uri: str | None = None
        self._discovered_at = 0.0
        self._attempt_at: float | None = None  # last fetch of any kind
        self._miss_at: float | None = None  # last fetch for an unknown kid
        # sha256(token) -> (principal, kid, key, exp): see _cached.
        self._verified: dict[bytes, tuple[Principal, str, Key, float]] = {}
        self._max_verified = max_verified

    def verify(self, token: str) -> Principal:
        """The caller of a valid token, or ``Unauthenticated`` - never any other exception."""
        try:
            return self._verify(token)
        except Unauthenticated:
            raise
        except Exception:  # a bug or an input we did not foresee must not become a pass or a 500
            log.exception("access token verification failed unexpectedly")
            raise _deny("verification failed") from None

    def _verify(self, token: str) -> Principal:
        if not isinstance(token, str) or not token.isascii() or len(token) > MAX_TOKEN_BYTES:
            raise _deny("malformed or too large")
        digest = hashlib.sha256(token.encode("ascii")).digest()
        cached = self._cached(digest)
        if cached is not None:
            return cached
        try:  # the same parser jwt.decode uses below, so the header we check is the signed one
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, TypeError):
            raise _deny("malformed") from None
        alg, kid = self._check_header(header)
        key = self._key(kid, alg)
        try:  # RFC 9068 §4, RFC 8725 §3.1: the IdP's key, only the one algorithm checked above
            decoded = jwt.decode(token, key, algorithms=[alg])
        except (JoseError, ValueError, TypeError):
            raise _deny("bad signature") from None
        principal = self._principal(decoded.claims)
        self._remember(digest, principal, kid, key)
        return principal

    # --- verified tokens, by hash --------------------------------------------------------------
    # A stream of calls with one token checks its signature once. An entry holds until the
    # token's own exp (no leeway) and only while the key that verified it is the one cached for
    # its kid: a refetched JWK Set (every cache_ttl, or on rotation) means verifying again, and
    # a key the IdP withdrew is never trusted through this cache.

    def _cached(self, digest: bytes) -> Principal | None:
        entry = self._verified.get(digest)
        if entry is None:
            return None
        principal, kid, key, until = entry
        current = self._keys.get(kid)
        if self._clock() < until and self._fresh() and current is not None and current[0] is key:
            return principal
        self._verified.pop(digest, None)
        return None

    def _remember(self, digest: bytes, principal: Principal, kid: str, key: Key) -> None:
        exp = principal.claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            return
        if len(self._verified) >= self._max_verified:
            now = self._clock()
            for old, entry in list(self._verified.items()):
                if entry[3] <= now:
                    self._verified.pop(old, None)
            if len(self._verified) >= self._max_verified:
                self._verified.clear()
        self._verified[digest] = (principal, kid, key, float(exp))

    def _check_header(self, header: dict) -> tuple[str, str]:
        alg, kid, typ = header.get("alg"), header.get("kid"), header.get("typ")
        if not isinstance(alg, str) or alg not in self._algs:  # "none" and HS* end here
            raise _deny("algorithm not allowed")
        if set(header) - ALLOWED_HEADERS:
            raise _deny("unexpected header parameter")
        if not isinstance(typ, str) or typ.lower() not in ACCESS_TOKEN_TYPES:
            raise _deny("not an access token")
        if not isinstance(kid, str) or not kid:  # keys are only ever looked up by kid
            raise _deny("no key id")
        return alg, kid

    def _key(self, kid: str, alg: str) -> Key:
        entry = self._keys.get(kid)
        if entry is None or not self._fresh():
            with self._lock:  # single flight: a caller that waited here reuses the fetch made
                now, entry = self._clock(), self._keys.get(kid)
                # A stale cache is refreshed, and an unknown kid (a rotation) refetched, each at
                # most once per refresh_interval: bad tokens cannot make us hammer the IdP.
                refresh = not self._fresh() and self._due(self._attempt_at, now)
                rotate = (
                    entry is None and self._keys_at is not None and self._due(self._miss_at, now)
                )
                if refresh or rotate:
                    self._attempt_at = now
                    self._miss_at = now if rotate else self._miss_at
                    self._refresh(now)
                    entry = self._keys.get(kid)
        if entry is None:
            raise _deny("unknown signing key")
        # Stale-if-error has a limit: a key the IdP may have withdrawn long ago is not trusted
        # forever just because the IdP cannot be reached.
        if self._keys_at is not None and self._clock() - self._keys_at > self._max_stale:
            raise _deny("signing keys too old to trust")
        key, jwk = entry
        kty, crv = ALG_KEYS[alg]
        # RFC 8725 §3.1: the key must be made for this algorithm; a JWK's "alg" (RFC 7517 §4.4)
        # pins it to exactly one.
        if jwk.get("kty") != kty or jwk.get("alg", alg) != alg or crv not in (None, jwk.get("crv")):
            raise _deny("key does not match the algorithm")
        return key

    def _due(self, last: float | None, now: float) -> bool:
        return last is None or now - last >= self._interval

    def _fresh(self) -> bool:
        return self._keys_at is not None and self._clock() - self._keys_at < self._ttl

    def _refresh(self, now: float) -> None:
        """Refetch discovery (when stale) and the JWKS; on failure keep what is cached."""
        try:
            if self._jwks_uri is None or now - self._discovered_at >= self._ttl:
                self._jwks_uri, self._discovered_at = self._discover(), now
            keys = self._parse_jwks(self._get_json(self._jwks_uri))
        except (requests.RequestException, ValueError, JoseError) as exc:
            # Stale-if-error, for what the outside world can do to us: no answer, a bad answer,
            # a document that does not parse. Anything else is our bug: it reaches verify(),
            # which logs it with its traceback and refuses the token.
            log.warning("cannot refresh the IdP's keys (%s); %d cached", exc, len(self._keys))
            self._on_refresh(False)
            return
        self._keys, self._keys_at = keys, now
        self._on_refresh(True)

    def _discover(self) -> str:
        # OIDC Discovery §4.1 (drop a trailing "/"), §4.3 and RFC 8414 §3.3: the document must
        # name exactly the issuer we trust, or an attacker's metadata could be mixed up with it.
        doc = self._get_json(self._issuer.rstrip("/") + "/.well-known/openid-configuration")
        if doc.get("issuer") != self._issuer:
            raise ValueError(f"discovery names issuer {doc.get('issuer')!r}")
        uri = doc.get("jwks_uri")
        parts = urlsplit(uri) if isinstance(uri, str) else None
        # No downgrade: an https issuer's keys come over https only.
        if not parts or not parts.netloc or parts.scheme not in ("https", self._scheme):
            raise ValueError(f"unusable jwks_uri {uri!r}")
        return uri

    def _get_json(self, url: str) -> dict:
        deadline = time.monotonic() + 2 * self._timeout  # timeout is per socket read, not total
        # No redirects: the trusted URL is the one we were configured with or were given.
        with self._http.get(
            url,
            timeout=self._timeout,
            allow_redirects=False,
            stream=True,
            headers={"Accept": "application/json"},
        ) as response:
            if response.status_code != 200:
                raise ValueError(f"{url} answered HTTP {response.status_code}")
            body = bytearray()
            for chunk in response.iter_content(16 * 1024):
                body += chunk
                if len(body) > MAX_DOCUMENT_BYTES or time.monotonic() > deadline:
                    raise ValueError(f"{url}: answer too large or too slow")
        doc = json.loads(body)
        if not isinstance(doc, dict):
            raise ValueError(f"{url} is not a JSON object")
        return doc

    @staticmethod
    def _parse_jwks(doc: dict) -> dict[str, tuple[Key, dict]]:
        entries = doc.get("keys")
        if not isinstance(entries, list):
            raise ValueError("JWKS has no keys array")
        keys: dict[str, tuple[Key, dict]] = {}
        for jwk in entries:
            # RFC 7517 §5: skip keys we cannot use rather than refuse the set; symmetric ("oct")
            # and encryption keys are never signature keys here.
            if (
                not isinstance(jwk, dict)
                or not isinstance(jwk.get("kid"), str)
                or jwk.get("kty") not in ("EC", "RSA", "OKP")
                or jwk.get("use", "sig") != "sig"
                or jwk["kid"] in keys
            ):
                continue
            try:
                keys[jwk["kid"]] = (JWKRegistry.import_key(jwk), dict(jwk))
            except (JoseError, ValueError, TypeError) as exc:
                log.warning("skipping unusable JWK %r: %s", jwk.get("kid"), exc)
        return keys

    def _principal(self, claims: dict) -> Principal:
        # joserfc's decode checks no claims: RFC 9068 §2.2 (required claims) and §4 (iss, aud,
        # exp), RFC 8725 §3.8 (issuer) and §3.9 (audience) are enforced here.
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock()),
            leeway=self._leeway,
            iss={"essential": True, "value": self._issuer},
            aud={"essential": True, "value": self._audience},
            exp={"essential": True},
            iat={"essential": True},
            jti={"essential": True},
            sub={"essential": True},
            client_id={"essential": True},
        )
        try:
            registry.validate(claims)
        except (JoseError, ValueError, TypeError) as exc:
            log.info("access token claims rejected: %s", exc)
            raise _deny("claims rejected") from None
        sub, client_id, scope = claims["sub"], claims["client_id"], claims.get("scope", "")
        if not isinstance(client_id, str) or not isinstance(scope, str):
            raise _deny("claims rejected")
        return Principal(self._issuer, sub, client_id, frozenset(scope.split()), dict(claims))

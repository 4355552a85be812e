"""Authlib's view of a registered client, and ``private_key_jwt`` client authentication."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import ClientMixin, InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from idp.adapters.sql.models import Client
from idp.ports import EphemeralStore
from idp.services.crypto import KeyedDigest

ASSERTION_ALGS = ["ES256", "RS256", "PS256", "EdDSA"]


class OAuthClient(ClientMixin):
    """Adapts the :class:`~idp.adapters.sql.models.Client` row to Authlib's ``ClientMixin``."""

    def __init__(self, row: Client, digest: KeyedDigest) -> None:
        self.row = row
        self._digest = digest

    @property
    def client_id(self) -> str:
        return self.row.client_id

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> None:
        # Tightened: OIDC Core §3.1.2.1 makes redirect_uri REQUIRED; never guess one.
        return None

    def get_allowed_scope(self, scope: str | None) -> str:
        if not scope:
            return ""
        allowed = set(self.row.scopes)
        return " ".join(dict.fromkeys(s for s in scope.split() if s in allowed))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Simple string comparison, RFC 3986 §6.2.1 (OIDC Core §3.1.2.1, RFC 9700 §2.1).
        return redirect_uri in self.row.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return self._digest.verify(client_secret, self.row.secret_digest)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        # One registered method for every endpoint (RFC 7591 token_endpoint_auth_method).
        return method == self.row.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.row.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.row.grant_types


class PrivateKeyJwt(JWTBearerClientAssertion):
    """RFC 7523 §2.2 / OIDC Core §9 ``private_key_jwt``.

    Tightened: only asymmetric algorithms are accepted (an HMAC over a public key would be
    forgeable), the audience is this issuer or its token endpoint, and every ``jti`` is
    single-use while the assertion could still be valid.
    """

    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, audiences: list[str], store: EphemeralStore, query) -> None:
        super().__init__(validate_jti=True, leeway=30)
        self._audiences = audiences
        self._store = store
        self._query = query

    def get_audiences(self) -> list[str]:
        return self._audiences

    def resolve_client_public_key(self, client: OAuthClient):
        if not client.row.jwks:
            raise InvalidClientError(description="The client has no registered keys.")
        return KeySet.import_key_set(client.row.jwks)

    def process_assertion_claims(self, assertion, resolve_key):
        try:
            token = jwt.decode(assertion, resolve_key, algorithms=ASSERTION_ALGS)
        except (JoseError, ValueError) as exc:
            raise InvalidClientError(description="Invalid client assertion.") from exc
        self.verify_claims(token.claims)
        exp = token.claims.get("exp")
        if not isinstance(exp, int):
            raise InvalidClientError(description="Invalid client assertion.")
        return token.claims

    def validate_jti(self, claims, jti) -> bool:
        if not isinstance(jti, str) or not jti or len(jti) > 200:
            return False
        ttl = max(60, int(claims["exp"]) - int(claims.get("iat", claims["exp"])) + 60)
        return self._store.add(f"assertion-jti:{claims['iss']}:{jti}", "1", min(ttl, 3600))

"""Token revocation (RFC 7009) and introspection (RFC 7662)."""

from __future__ import annotations

from dataclasses import dataclass

from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from idp.adapters.sql.models import Grant
from idp.oidc.grants import ALL_AUTH_METHODS


@dataclass
class TokenRef:
    """A presented token resolved to its grant."""

    kind: str  # "access_token" or "refresh_token"
    grant: Grant
    active: bool

    def check_client(self, client) -> bool:
        return self.grant.client_id == client.client_id

    def is_expired(self) -> bool:
        return not self.active

    def is_revoked(self) -> bool:
        return self.grant.revoked_at is not None


def resolve(tokens, token: str, hint: str | None, now: float) -> TokenRef | None:
    order = (
        ("refresh_token", "access_token")
        if hint == "refresh_token"
        else ("access_token", "refresh_token")
    )
    for kind in order:
        if kind == "access_token":
            found = tokens.find_access(token)
            if found is not None:
                grant, claims = found
                return TokenRef(kind, grant, grant.access_expires_at > now)
        else:
            grant = tokens.find_refresh(token)
            if grant is not None:
                return TokenRef(kind, grant, tokens.refresh_active(grant))
    return None


class Revocation(RevocationEndpoint):
    """RFC 7009. Revoking a refresh token revokes its family and the family's access tokens;
    an unknown or foreign token gets 200 as §2.2 asks, and changes nothing."""

    CLIENT_AUTH_METHODS = ALL_AUTH_METHODS

    def authenticate_token(self, request, client):
        self.check_params(request, client)
        token = self.query_token(request.form["token"], request.form.get("token_type_hint"))
        if token is not None and not token.check_client(client):
            return None
        return token

    def query_token(self, token_string, token_type_hint):
        return resolve(self.server.tokens, token_string, token_type_hint, self.server.clock())

    def revoke_token(self, token: TokenRef, request) -> None:
        if token.kind == "refresh_token":
            self.server.tokens.revoke_family(token.grant.family_id)
        else:
            self.server.tokens.revoke_access(token.grant.id)


class Introspection(IntrospectionEndpoint):
    """RFC 7662 for authenticated confidential clients; a client may introspect tokens issued
    to it or addressed to it (its ``client_id`` in ``aud``)."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]

    def query_token(self, token_string, token_type_hint):
        return resolve(self.server.tokens, token_string, token_type_hint, self.server.clock())

    def check_permission(self, token: TokenRef, client, request) -> bool:
        return token.grant.client_id == client.client_id or client.client_id in (
            token.grant.audience or []
        )

    def introspect_token(self, token: TokenRef) -> dict:
        grant = token.grant
        exp = grant.access_expires_at if token.kind == "access_token" else grant.family_expires_at
        body = {
            "active": True,
            "token_type": "Bearer" if token.kind == "access_token" else "refresh_token",
            "scope": grant.scope,
            "client_id": grant.client_id,
            "sub": grant.user_id or grant.client_id,
            "iss": self.server.settings.issuer,
            "exp": exp,
            "iat": grant.created_at,
            "aud": grant.audience,
        }
        if grant.auth_time:
            body["auth_time"] = grant.auth_time
        return body

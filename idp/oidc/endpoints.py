"""Token revocation (RFC 7009) and introspection (RFC 7662)."""

from __future__ import annotations

from dataclasses import dataclass

from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from idp.adapters.sql.models import Grant
from idp.domain.access import AccessGrant
from idp.oidc.grants import ALL_AUTH_METHODS


@dataclass
class TokenRef:
    """A presented token resolved: an access token (``access``) or a refresh token's grant
    (``refresh``)."""

    kind: str  # "access_token" or "refresh_token"
    active: bool
    access: AccessGrant | None = None
    refresh: Grant | None = None

    @property
    def client_id(self) -> str:
        return self.access.client_id if self.access else self.refresh.client_id

    @property
    def audience(self) -> list[str]:
        return list(self.access.audience if self.access else self.refresh.audience or ())

    def check_client(self, client) -> bool:
        return self.client_id == client.client_id

    def is_expired(self) -> bool:
        return not self.active

    def is_revoked(self) -> bool:
        # An access token is found only while unrevoked (TokenService.find_access).
        return self.refresh is not None and self.refresh.revoked_at is not None


def resolve(tokens, token: str, hint: str | None, now: float) -> TokenRef | None:
    order = (
        ("refresh_token", "access_token")
        if hint == "refresh_token"
        else ("access_token", "refresh_token")
    )
    for kind in order:
        if kind == "access_token":
            access = tokens.find_access(token)
            if access is not None:
                # A person's token is good only while the account is (as at userinfo).
                usable = access.user_id is None or (access.holder and access.holder.usable)
                return TokenRef(kind, bool(usable) and access.expires_at > now, access=access)
        else:
            grant = tokens.find_refresh(token)
            if grant is not None:
                return TokenRef(kind, tokens.refresh_active(grant), refresh=grant)
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
        if token.refresh is not None:
            self.server.tokens.revoke_family(token.refresh.family_id)
        elif token.access.stateless:
            self.server.tokens.deny(token.access)
        else:
            self.server.tokens.revoke_access(token.access.grant_id)


class Introspection(IntrospectionEndpoint):
    """RFC 7662 for authenticated confidential clients; a client may introspect tokens issued
    to it or addressed to it (its ``client_id`` in ``aud``)."""

    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]

    def query_token(self, token_string, token_type_hint):
        return resolve(self.server.tokens, token_string, token_type_hint, self.server.clock())

    def check_permission(self, token: TokenRef, client, request) -> bool:
        return token.client_id == client.client_id or client.client_id in token.audience

    def introspect_token(self, token: TokenRef) -> dict:
        if token.access is not None:
            access = token.access
            token_type, user_id, exp = "Bearer", access.user_id, access.expires_at
            scope, iat, auth_time = access.scope, access.issued_at, access.auth_time
        else:
            grant = token.refresh
            token_type, user_id, exp = "refresh_token", grant.user_id, grant.family_expires_at
            scope, iat, auth_time = grant.scope, grant.created_at, grant.auth_time
        body = {
            "active": True,
            "token_type": token_type,
            "scope": scope,
            "client_id": token.client_id,
            "sub": user_id or token.client_id,
            "iss": self.server.settings.issuer,
            "exp": exp,
            "iat": iat,
            "aud": token.audience,
        }
        if auth_time:
            body["auth_time"] = auth_time
        return body

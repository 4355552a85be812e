"""Grant types: authorization code (with mandatory PKCE S256), refresh token, client credentials.

Authlib parses requests and formats errors; the rules are spelled out here, each check
opening with what it enforces. Storage is delegated to :class:`~idp.services.tokens.TokenService`.
"""

from __future__ import annotations

import hmac
import re

from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc6749.hooks import hooked
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from idp.domain.scopes import split_scope
from idp.services.tokens import Authentication

PKCE_PATTERN = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
ALL_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"]


class InvalidTargetError(OAuth2Error):
    """RFC 8707 §2: the requested resource is unknown or not allowed."""

    error = "invalid_target"


def resolve_audience(server, form) -> list[str]:
    """RFC 8707 resource indicators: one configured resource, or the issuer (userinfo)."""
    resources = form.getlist("resource") if hasattr(form, "getlist") else [form.get("resource")]
    resources = [r for r in resources if r]
    if not resources:
        return [server.settings.issuer]
    if len(resources) > 1:
        raise InvalidTargetError("Ask for one resource per access token.")
    if resources[0] not in server.settings.resources:
        raise InvalidTargetError("Unknown resource.")
    return resources


def check_pkce_challenge(grant, redirect_uri) -> None:
    """Tightened: PKCE is REQUIRED for every client and only ``S256`` is accepted
    (RFC 9700 §2.1.1; RFC 7636 §4.3). Authlib allows ``plain`` and an absent challenge."""
    data = grant.request.payload.datalist
    challenge = data.get("code_challenge", [])
    method = data.get("code_challenge_method", [])
    if len(challenge) != 1 or len(method) > 1:
        raise InvalidRequestError("A single 'code_challenge' is required (PKCE, RFC 7636).")
    if not method:
        raise InvalidRequestError("'code_challenge_method' must be 'S256'.")
    if method[0] != "S256":
        raise InvalidRequestError("Only the 'S256' code challenge method is supported.")
    if not PKCE_PATTERN.match(challenge[0]):
        raise InvalidRequestError("Invalid 'code_challenge'.")


def check_scope_present(grant, redirect_uri) -> None:
    """Tightened: a request must name at least one scope the client may have."""
    if not grant.request.scope:
        raise InvalidScopeError("No requested scope is allowed for this client.")


def check_openid_parameters(grant, redirect_uri) -> None:
    """OIDC Core §3.1.2.1: ``prompt=none`` stands alone; ``max_age`` is a whole number."""
    data = grant.request.payload.data
    prompts = (data.get("prompt") or "").split()
    if "none" in prompts and len(prompts) > 1:
        raise InvalidRequestError("'prompt=none' cannot be combined with other values.")
    for prompt in prompts:
        if prompt not in ("none", "login", "consent", "select_account"):
            raise InvalidRequestError(f"Unsupported prompt value '{prompt[:20]}'.")
    max_age = data.get("max_age")
    if max_age is not None and (not max_age.isdigit() or len(max_age) > 9):
        raise InvalidRequestError("'max_age' must be a whole number of seconds.")
    nonce = data.get("nonce")
    if nonce is not None and len(nonce) > 512:
        raise InvalidRequestError("'nonce' is too long.")
    if grant.request.payload.state is not None and len(grant.request.payload.state) > 2000:
        raise InvalidRequestError("'state' is too long.")


class CodeGrant(AuthorizationCodeGrant):
    """RFC 6749 §4.1 with OIDC Core §3.1, PKCE (RFC 7636) mandatory."""

    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

    def __init__(self, request, server) -> None:
        super().__init__(request, server)
        for check in (check_scope_present, check_pkce_challenge, check_openid_parameters):
            self.register_hook("after_validate_authorization_request_payload", check)

    @staticmethod
    def validate_authorization_redirect_uri(request, client):
        """Tightened: ``redirect_uri`` is REQUIRED (OIDC Core §3.1.2.1) and must equal a
        registered one exactly; without it there is no safe place to send an error."""
        uri = request.payload.redirect_uri
        if not uri:
            raise InvalidRequestError("Missing 'redirect_uri' in request.")
        if not client.check_redirect_uri(uri):
            raise InvalidRequestError("The 'redirect_uri' is not registered for this client.")
        return uri

    def issue_code(self, redirect_uri: str, grant_user) -> list[tuple[str, str]]:
        """RFC 6749 §4.1.2: store a code for this request; the response parameters."""
        authn: Authentication = self.request.authn
        data = self.request.payload.data
        code = self.server.tokens.save_code(
            client_id=self.request.client.client_id,
            user_id=grant_user.id,
            redirect_uri=redirect_uri,
            scope=self.request.scope,
            nonce=data.get("nonce"),
            code_challenge=data["code_challenge"],
            code_challenge_method="S256",
            authn=authn,
        )
        params = [("code", code)]
        if self.request.payload.state:
            params.append(("state", self.request.payload.state))
        return params

    def validate_token_request(self):
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("The client may not use this grant type.")
        form = self.request.form
        code = form.get("code")
        if not code:
            raise InvalidRequestError("Missing 'code' in request.")
        verifier = form.get("code_verifier")
        if not verifier:
            raise InvalidRequestError("Missing 'code_verifier' in request.")
        audience = resolve_audience(self.server, form)
        # Single use: the code is spent here whatever follows, so a stolen code presented
        # with a wrong verifier or redirect URI cannot be retried.
        row = self.server.tokens.consume_code(code, client.client_id)
        if row is None:
            raise InvalidGrantError("The code is invalid, expired or already used.")
        if form.get("redirect_uri") != row.redirect_uri:
            raise InvalidGrantError("The 'redirect_uri' differs from the authorization request.")
        # RFC 7636 §4.6: BASE64URL(SHA256(verifier)) == challenge, else invalid_grant.
        if not PKCE_PATTERN.match(verifier) or not hmac.compare_digest(
            create_s256_code_challenge(verifier), row.code_challenge
        ):
            raise InvalidGrantError("The code verifier does not match the challenge.")
        self.request.client = client
        self.request.authorization_code = row
        self.request.audience = audience

    @hooked
    def create_token_response(self):
        row = self.request.authorization_code
        client = self.request.client
        user = self.server.users.read(row.user_id)
        if user is None or not user.usable:
            raise InvalidGrantError("The account is not active.")
        authn = Authentication(row.auth_time, row.acr, tuple(row.amr or ()), row.sid)
        scopes = split_scope(row.scope)
        issued = self.server.tokens.issue(
            client.row,
            user,
            row.scope,
            self.request.audience,
            authn=authn,
            include_refresh="offline_access" in scopes and client.check_grant_type("refresh_token"),
            code_id=row.id,
        )
        body = dict(issued.response)
        if row.sid:
            self.server.sessions.note_client(row.sid, client.client_id)
        if "openid" in scopes:
            body["id_token"] = self.server.tokens.id_token(
                client.row, user, row.scope, authn, row.nonce, body["access_token"]
            )
        return 200, body, self.TOKEN_RESPONSE_HEADER


class RotatingRefreshGrant(RefreshTokenGrant):
    """RFC 6749 §6 with rotation on every use and family revocation on reuse (RFC 9700
    §4.14.2); the family's absolute lifetime is never extended."""

    TOKEN_ENDPOINT_AUTH_METHODS = ALL_AUTH_METHODS

    def validate_token_request(self):
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("The client may not use this grant type.")
        token = self.request.form.get("refresh_token")
        if not token:
            raise InvalidRequestError("Missing 'refresh_token' in request.")
        audience = resolve_audience(self.server, self.request.form)
        # Rotation and issue are one unit of work (TokenService.refresh); the ID token below
        # joins it through the server's transaction around the whole token request.
        outcome = self.server.tokens.refresh(
            token,
            client.row,
            split_scope(self.request.payload.scope),
            audience,
            self.server.users.read,
        )
        if outcome.refused == "scope":
            raise InvalidScopeError("The requested scope exceeds the original grant.")
        if outcome.refused == "inactive":
            raise InvalidGrantError("The account is not active.")
        if outcome.refused is not None:
            raise InvalidGrantError("The refresh token is invalid, expired or revoked.")
        self.request.client = client
        self.request.refresh_token = outcome.previous
        self.request.refreshed = outcome

    @hooked
    def create_token_response(self):
        outcome = self.request.refreshed
        row, issued, user = outcome.previous, outcome.issued, outcome.user
        body = dict(issued.response)
        scope = issued.grant.scope
        if "openid" in split_scope(scope):
            authn = Authentication(row.auth_time or 0, row.acr, tuple(row.amr or ()), row.sid)
            body["id_token"] = self.server.tokens.id_token(
                self.request.client.row, user, scope, authn, None, body["access_token"]
            )
        return 200, body, self.TOKEN_RESPONSE_HEADER


class ServiceCredentialsGrant(ClientCredentialsGrant):
    """RFC 6749 §4.4 for internal services: confidential clients only, no user scopes."""

    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt"]

    def validate_token_request(self):
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("The client may not use this grant type.")
        requested = split_scope(self.request.payload.scope) or [
            s for s in client.row.scopes if s not in USER_SCOPES
        ]
        if not requested or any(s in USER_SCOPES or s not in client.row.scopes for s in requested):
            raise InvalidScopeError("Ask for service scopes registered for this client.")
        self.request.client = client
        self.request.granted_scope = " ".join(requested)
        self.request.audience = resolve_audience(self.server, self.request.form)

    @hooked
    def create_token_response(self):
        # Nothing is written: the token is stateless until revoked (TokenService.issue_service).
        body = self.server.tokens.issue_service(
            self.request.client.row, self.request.granted_scope, self.request.audience
        )
        return 200, body, self.TOKEN_RESPONSE_HEADER


USER_SCOPES = frozenset({"openid", "profile", "email", "phone", "offline_access"})

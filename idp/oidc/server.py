"""The authorization server: Authlib's Flask server wired to our services and grants."""

from __future__ import annotations

from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Request

from idp.oidc.clients import OAuthClient, PrivateKeyJwt
from idp.oidc.endpoints import Introspection, Revocation
from idp.oidc.grants import CodeGrant, RotatingRefreshGrant, ServiceCredentialsGrant


class OIDCServer(AuthorizationServer):
    def __init__(self, app, settings, services, store) -> None:
        super().__init__()
        self.settings = settings
        self.tokens = services.tokens
        self.users = services.users
        self.sessions = services.sessions
        self.clock = services.clock
        self._uow = services.uow
        self._clients = services.clients
        self._digest = services.digest
        self.init_app(app)
        self.scopes_supported = list(settings.scopes_supported)
        self.register_grant(CodeGrant)
        self.register_grant(RotatingRefreshGrant)
        self.register_grant(ServiceCredentialsGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)
        issuer = settings.issuer
        self.register_client_auth_method(
            "private_key_jwt",
            PrivateKeyJwt([issuer, issuer + "/token"], store, self.query_client),
        )

    def create_oauth2_request(self, request):
        # A resumed interaction passes its stored request; otherwise use Flask's.
        if isinstance(request, OAuth2Request):
            return request
        return super().create_oauth2_request(request)

    def query_client(self, client_id):
        row = self._clients.get(client_id) if isinstance(client_id, str) else None
        return OAuthClient(row, self._digest) if row is not None else None

    def save_token(self, token, request):  # pragma: no cover - grants persist tokens
        raise NotImplementedError

    # Authlib echoes request values into error descriptions and raises ValueError when they
    # hold characters RFC 6749 §5.2 forbids there; such input is simply a bad request.
    def get_consent_grant(self, request=None, end_user=None):
        try:
            return super().get_consent_grant(request=request, end_user=end_user)
        except ValueError:
            raise InvalidRequestError("The request has malformed parameters.") from None

    # One token request is one unit of work: the code's consumption or the refresh token's
    # rotation, the new grant and the ID token commit together. An OAuth error is an answer,
    # not a failure: what it did (a spent code, a family revoked on reuse) is committed; any
    # other exception rolls everything back, so a retry finds the refresh token unused.
    def create_token_response(self, request=None):
        try:
            with self._uow.transaction():
                return super().create_token_response(request)
        except ValueError:
            return self._malformed()

    def create_endpoint_response(self, name, request=None):
        try:
            with self._uow.transaction():
                return super().create_endpoint_response(name, request)
        except ValueError:
            return self._malformed()

    def _malformed(self):
        return super().handle_error_response(
            None, InvalidRequestError("The request has malformed parameters.")
        )

    def handle_error_response(self, request, error):
        # RFC 6749 §5.2: answer a failed client authentication with 401 and a challenge,
        # whatever method the client tried.
        if error.error == "invalid_client":
            error.status_code = 401
        return super().handle_error_response(request, error)

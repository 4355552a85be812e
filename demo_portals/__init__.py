"""Two demo portals of the company — «Интернет-магазин» and «Домашнее ТВ» — that sign people in
through ЕЛК. They are examples of how a company portal integrates: an ordinary confidential
OIDC client (Authlib's Flask client: discovery, PKCE S256, nonce, state), RP-initiated logout,
back-channel logout, and a call to the linking service with the access token it got.

They live outside both services and import neither; only the gRPC contract (``elk_proto``).
"""

from __future__ import annotations

from authlib.integrations.flask_client import OAuth
from flask import Flask

from demo_portals.backchannel import LogoutTokenVerifier
from demo_portals.config import PortalSettings
from demo_portals.linking import LinkingReader
from demo_portals.sessions import SessionStore


def create_app(settings: PortalSettings, logout_tokens: LogoutTokenVerifier | None = None) -> Flask:
    """Build one portal (the composition root). Tests may pass their own logout token
    verifier (e.g. trusting a key set of their own instead of the IdP's JWKS)."""
    from demo_portals.views import bp

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_NAME=settings.cookie_name,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
    )
    oauth = OAuth(app)
    oauth.register(
        "elk",
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        server_metadata_url=f"{settings.issuer}/.well-known/openid-configuration",
        client_kwargs={
            "scope": "openid profile linking",
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": "client_secret_basic",
            "timeout": 5,
        },
    )
    app.extensions["portal"] = Portal(
        settings=settings,
        oauth=oauth,
        sessions=SessionStore(),
        linking=LinkingReader(settings.linking_target),
        logout_tokens=logout_tokens
        or LogoutTokenVerifier(
            settings.issuer,
            settings.client_id,
            lambda force: oauth.elk.fetch_jwk_set(force=force),
        ),
    )
    app.register_blueprint(bp)
    return app


class Portal:
    """What the views need, built once per app."""

    def __init__(self, settings, oauth, sessions, linking, logout_tokens) -> None:
        self.settings = settings
        self.oauth = oauth
        self.sessions = sessions
        self.linking = linking
        self.logout_tokens = logout_tokens

    @property
    def elk(self):
        return self.oauth.elk

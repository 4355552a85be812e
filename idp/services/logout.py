"""Ending SSO sessions: RP-initiated logout and back-channel notification of every client.

The notifications are outbox rows (one per client URI), committed with the revocation and
POSTed by ``idp worker`` with retries: the logout request never waits on a relying party."""

from __future__ import annotations

import time
from collections.abc import Callable

from idp.adapters.sql.models import SsoSession
from idp.persistence import UnitOfWork
from idp.services.crypto import new_token
from idp.services.keys import KeyService
from idp.services.sessions import SessionService
from idp.services.tokens import TokenService

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
LOGOUT_TTL = 3600  # a relying party down longer than this learns of the logout otherwise


class LogoutService:
    def __init__(
        self,
        issuer: str,
        sessions: SessionService,
        tokens: TokenService,
        keys: KeyService,
        outbox,
        uow: UnitOfWork,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._uow = uow
        self._issuer = issuer
        self._sessions = sessions
        self._tokens = tokens
        self._keys = keys
        self._outbox = outbox
        self._clock = clock

    def logout_token(self, client_id: str, alg: str, sub: str, sid: str) -> str:
        """OIDC Back-Channel Logout 1.0 §2.4: no ``nonce``, an ``events`` claim, short life."""
        now = int(self._clock())
        claims = {
            "iss": self._issuer,
            "aud": client_id,
            "iat": now,
            "exp": now + 120,
            "jti": new_token(16),
            "sub": sub,
            "sid": sid,
            "events": {BACKCHANNEL_EVENT: {}},
        }
        return self._keys.sign(claims, alg, typ="logout+jwt")

    def end(self, session: SsoSession, reason: str = "logout") -> list[str]:
        """End ``session``, revoke its tokens and queue a back-channel logout token for each
        client of it with a URI; returns the URIs queued. One unit of work: the queued
        messages commit with the revocation. The token itself is signed when it is sent (its
        ``exp`` is short; a retry needs a fresh one)."""
        with self._uow.transaction():
            if not self._sessions.end(session, reason=reason):
                return []
            queued = []
            for client in self._sessions.clients_of(session.id):
                if not client.backchannel_logout_uri:
                    continue
                payload = {
                    "uri": client.backchannel_logout_uri,
                    "client_id": client.client_id,
                    "alg": client.id_token_signed_response_alg,
                    "sub": session.user_id,
                    "sid": session.id,
                }
                self._outbox.add("logout", "backchannel", payload, ttl=LOGOUT_TTL, ref=session.id)
                queued.append(client.backchannel_logout_uri)
            self._tokens.revoke_for(session.user_id, sid=session.id)
        return queued

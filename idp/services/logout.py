"""Ending SSO sessions: RP-initiated logout and back-channel notification of every client."""

from __future__ import annotations

import time
from collections.abc import Callable

from idp.adapters.sql.models import SsoSession
from idp.persistence import UnitOfWork
from idp.ports import LogoutNotifier
from idp.services.crypto import new_token
from idp.services.keys import KeyService
from idp.services.sessions import SessionService
from idp.services.tokens import TokenService

BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"


class LogoutService:
    def __init__(
        self,
        issuer: str,
        sessions: SessionService,
        tokens: TokenService,
        keys: KeyService,
        notifier: LogoutNotifier,
        uow: UnitOfWork,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._uow = uow
        self._issuer = issuer
        self._sessions = sessions
        self._tokens = tokens
        self._keys = keys
        self._notifier = notifier
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

    def end(self, session: SsoSession) -> list[str]:
        """End ``session``, revoke its tokens and notify its clients; returns the URIs told.
        One unit of work; the notices are sent inside it, as the change they announce."""
        with self._uow.transaction():
            if not self._sessions.end(session):
                return []
            self._tokens.revoke_for(session.user_id, sid=session.id)
            told = []
            for client in self._sessions.clients_of(session.id):
                if not client.backchannel_logout_uri:
                    continue
                token = self.logout_token(
                    client.client_id,
                    client.id_token_signed_response_alg,
                    session.user_id,
                    session.id,
                )
                if self._notifier.send(client.backchannel_logout_uri, token):
                    told.append(client.backchannel_logout_uri)
        return told

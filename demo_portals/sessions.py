"""The portal's own sessions, kept in the process: the browser holds only a random key.

A back-channel logout arrives without the browser's cookie, so the portal must be able to end
a session by the IdP's ``sid`` (or ``sub``) — which a cookie-only session could not do.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass


@dataclass
class PortalSession:
    sub: str
    sid: str | None
    id_token: str
    claims: dict
    access_token: str
    token_scope: str
    token_expires_at: int | None


class SessionStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, PortalSession] = {}

    def open(self, record: PortalSession) -> str:
        key = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[key] = record
        return key

    def get(self, key: str | None) -> PortalSession | None:
        if not key:
            return None
        with self._lock:
            return self._sessions.get(key)

    def close(self, key: str | None) -> None:
        with self._lock:
            self._sessions.pop(key or "", None)

    def end_for(self, sid: str | None, sub: str | None) -> int:
        """OIDC Back-Channel Logout 1.0 §2.7: end the sessions of ``sid`` when given, else
        every session of ``sub``; returns how many ended."""
        with self._lock:
            doomed = [
                key
                for key, s in self._sessions.items()
                if (s.sid == sid if sid else s.sub == sub) and (sub is None or s.sub == sub)
            ]
            for key in doomed:
                del self._sessions[key]
        return len(doomed)

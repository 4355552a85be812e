"""HTTP :class:`~idp.ports.LogoutNotifier` (OIDC Back-Channel Logout 1.0 §2.5) and its twin."""

from __future__ import annotations

import logging

import requests

log = logging.getLogger(__name__)


class HttpLogoutNotifier:
    def __init__(self, timeout: float = 2.0) -> None:
        self._timeout = timeout
        self._http = requests.Session()

    def send(self, uri: str, logout_token: str) -> bool:
        try:
            response = self._http.post(
                uri,
                data={"logout_token": logout_token},
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            log.warning("back-channel logout to %s failed: %s", uri, exc)
            return False
        if response.status_code not in (200, 204):
            log.warning("back-channel logout to %s answered %s", uri, response.status_code)
            return False
        return True


class RecordingLogoutNotifier:
    """The twin: records what it was asked to deliver."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, uri: str, logout_token: str) -> bool:
        self.sent.append((uri, logout_token))
        return True

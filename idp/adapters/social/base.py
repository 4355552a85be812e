"""What every social adapter shares: HTTP calls with a timeout mapped to
:class:`~idp.domain.social.SocialError`, PKCE (RFC 7636) and the callback's common checks.

No adapter lets a transport failure, a non-JSON body or a surprise status escape as anything
but a ``SocialError``: the social service turns each kind into one Russian message.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

import requests

from idp.domain.social import SocialError


def s256(code_verifier: str) -> str:
    """The PKCE challenge: BASE64URL(SHA256(verifier)) without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(code_verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class HttpClient:
    """``requests`` with a timeout on every call (IDP_SOCIAL_TIMEOUT) and no redirects
    followed: a provider endpoint that redirects is answering something else."""

    def __init__(self, timeout: float, session: requests.Session | None = None) -> None:
        self.timeout = timeout
        self.session = session or requests.Session()

    def call(self, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
        """``(status, parsed JSON body)``. Timeouts, refused connections and 5xx raise
        ``unavailable``; a body that is not JSON raises ``bad_response``."""
        try:
            response = self.session.request(
                method, url, timeout=self.timeout, allow_redirects=False, **kwargs
            )
        except requests.Timeout as exc:
            raise SocialError("unavailable", f"{method} {url}: timed out") from exc
        except requests.RequestException as exc:
            raise SocialError("unavailable", f"{method} {url}: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise SocialError("unavailable", f"{method} {url}: HTTP {response.status_code}")
        try:
            return response.status_code, response.json()
        except ValueError as exc:
            raise SocialError(
                "bad_response", f"{method} {url}: HTTP {response.status_code}, not JSON"
            ) from exc


def require_dict(body: Any, where: str) -> dict:
    if not isinstance(body, dict):
        raise SocialError("bad_response", f"{where}: not a JSON object")
    return body


def text(value: Any) -> str | None:
    """A profile string, or None for absent/empty/non-string values."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def subject_of(value: Any, where: str) -> str:
    """A provider's stable user id as a string; ints and digit strings alike (VK ID sends
    ``user_id`` as an int in one response and a string in the next)."""
    if isinstance(value, bool) or not isinstance(value, int | str) or str(value) == "":
        raise SocialError("bad_response", f"{where}: no user id")
    return str(value)


def check_callback(
    params: Mapping[str, str], *, state: str, denied_errors: tuple[str, ...] = ("access_denied",)
) -> str:
    """The callback's code, after its error keys and state (RFC 6749 §4.1.2, §4.1.2.1).

    An ``error`` the provider sends when the person refused → ``denied``; any other error
    → ``bad_response``; a state that is not ours → ``state`` (the social service checks it
    first; this keeps an adapter safe on its own); no code → ``bad_response``.
    """
    error = params.get("error")
    if error:
        if error in denied_errors or params.get("error_reason") == "user_denied":
            raise SocialError("denied", error)
        if error in ("temporarily_unavailable", "server_error"):
            raise SocialError("unavailable", error)
        raise SocialError("bad_response", f"callback error {error}")
    if params.get("state") != state:
        raise SocialError("state", "callback state is not the one sent")
    code = params.get("code")
    if not code:
        raise SocialError("bad_response", "callback without a code")
    return code


def oauth_error_kind(error: str) -> str:
    """An RFC 6749 §5.2 token-endpoint ``error`` → SocialError kind."""
    return {
        "invalid_grant": "invalid_grant",
        "access_denied": "denied",
        "invalid_client": "config",
        "unauthorized_client": "config",
        "temporarily_unavailable": "unavailable",
        "server_error": "unavailable",
        "slow_down": "unavailable",
    }.get(error, "bad_response")


def phone_e164(value: Any) -> str | None:
    """``79991234567`` (VK ID) or ``+79991234567`` → ``+79991234567``; anything else → None."""
    raw = text(value)
    if raw is None:
        return None
    digits = raw[1:] if raw.startswith("+") else raw
    if not digits.isdigit() or not 8 <= len(digits) <= 15:
        return None
    return "+" + digits

"""An in-process twin of :class:`idp.ports.SocialProvider` for tests: it records what it was
asked and answers with the profile it was given (or raises the error it was given).

It is a recording object, not a server: the faithful HTTP fakes of each provider are in
``social_fakes/``. Chosen by injection (``create_app(social_providers=...)``), never by a
branch in production code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlencode

from idp.domain.social import SocialError, SocialProfile


@dataclass
class RecordingSocialProvider:
    """``profiles`` maps a ``code`` the test puts in the callback to the person it stands for;
    ``error`` (a :class:`SocialError` kind) makes every :meth:`complete` fail that way."""

    name: str
    profiles: dict[str, SocialProfile] = field(default_factory=dict)
    error: str | None = None
    authorizations: list[dict] = field(default_factory=list)
    completions: list[dict] = field(default_factory=list)
    authorize_endpoint: str = "https://provider.invalid/authorize"

    def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        self.authorizations.append(
            {
                "redirect_uri": redirect_uri,
                "state": state,
                "nonce": nonce,
                "code_verifier": code_verifier,
            }
        )
        query = urlencode({"redirect_uri": redirect_uri, "state": state, "nonce": nonce})
        return f"{self.authorize_endpoint}?{query}"

    def complete(
        self,
        params: Mapping[str, str],
        *,
        redirect_uri: str,
        state: str,
        nonce: str,
        code_verifier: str,
    ) -> SocialProfile:
        self.completions.append(
            {
                "params": dict(params),
                "redirect_uri": redirect_uri,
                "state": state,
                "nonce": nonce,
                "code_verifier": code_verifier,
            }
        )
        if self.error:
            raise SocialError(self.error, "the twin was told to fail")
        if params.get("error"):
            raise SocialError("denied", params["error"])
        profile = self.profiles.get(params.get("code", ""))
        if profile is None:
            raise SocialError("invalid_grant", "unknown code")
        return profile

    def person(self, code: str, subject: str, **fields) -> SocialProfile:
        """Register the person ``code`` stands for; returns the profile."""
        profile = SocialProfile(provider=self.name, subject=subject, **fields)
        self.profiles[code] = profile
        return profile

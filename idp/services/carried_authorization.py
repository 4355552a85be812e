"""A pending authorization request carried by a self-service flow.

A portal's authorization request (OIDC Core §3.1.2.1) that needs the person to sign in is
handed to the sign-in page as an *interaction* (``idp/web/oauth.py``: a quarter of an hour in
the ephemeral store). When the person leaves that page for «Регистрация», «Восстановить
пароль», the legacy-cabinet upgrade (or social sign-up), the flow they start takes the
request along: :func:`carry` puts a :class:`CarriedAuthorization` into the flow's stored
payload, where it lives as long as the flow does (24 hours for an e-mail link) and is read
back by :func:`carried_by` in any browser.

When the flow ends, the edge resumes the request instead of showing the IdP's main page:

* the person is signed in (registration): the request is resumed at once — the authorization
  endpoint checks it all again (client, redirect URI, PKCE, scope), asks for consent where it
  applies and redirects to the portal with the code;
* the person must still sign in (recovery, legacy upgrade): the sign-in page is shown with the
  request as its interaction, and signing in resumes it;
* the flow ended in another browser than the one it started in (an e-mail link opened
  elsewhere): the portal's ``state`` lives in the first browser, so a code sent from this one
  would be refused by the portal. The page says instead how to go back: open the portal where
  the registration began and sign in. :attr:`CarriedAuthorization.client_id` names it.

Nothing here trusts the carried parameters: they only ever re-enter the authorization
endpoint, which validates them as it validates a fresh request.

Usage in a flow (payload is the flow's JSON payload)::

    payload = carry(payload, authorization)       # at start, ``None`` when none
    authorization = carried_by(row.payload)        # at the end, ``None`` when none
"""

from __future__ import annotations

from dataclasses import dataclass

KEY = "authorization"
MAX_PARAMS = 40
MAX_VALUE = 2048


@dataclass(frozen=True)
class CarriedAuthorization:
    """The authorization request's parameters, its client and when it was made (the sign-in
    that completes it is newer, so ``prompt=login`` and ``max_age`` are met)."""

    params: dict[str, str]
    client_id: str
    created_at: int

    @classmethod
    def from_interaction(cls, interaction: dict | None) -> CarriedAuthorization | None:
        """From an interaction record (``params``, ``client_id``, ``created_at``); ``None``
        for none or a malformed one."""
        if not isinstance(interaction, dict):
            return None
        params = interaction.get("params")
        client_id = interaction.get("client_id")
        created_at = interaction.get("created_at")
        if not isinstance(params, dict) or not isinstance(client_id, str) or not client_id:
            return None
        if not isinstance(created_at, int) or len(params) > MAX_PARAMS:
            return None
        if not all(
            isinstance(k, str) and isinstance(v, str) and len(v) <= MAX_VALUE
            for k, v in params.items()
        ):
            return None
        if params.get("client_id") != client_id:
            return None
        return cls(dict(params), client_id, created_at)

    def as_interaction(self) -> dict:
        return {
            "params": dict(self.params),
            "client_id": self.client_id,
            "created_at": self.created_at,
        }


def carry(payload: dict, authorization: CarriedAuthorization | None) -> dict:
    """The flow payload with ``authorization`` in it (unchanged when ``None``)."""
    if authorization is None:
        return payload
    return {**payload, KEY: authorization.as_interaction()}


def carried_by(payload: dict | None) -> CarriedAuthorization | None:
    """The authorization request a flow carries, if any."""
    return CarriedAuthorization.from_interaction((payload or {}).get(KEY))

"""Linking a social identity to an account that already holds its contact: the person proves
the account first (checklist item 40, pre-account hijacking). A stored flow over a
``verifications`` row (purpose ``social_link``) whose ``contact_*`` is the account's contact the
provider named and whose payload carries the identity and the portal's pending authorization
request (:func:`~idp.services.carried_authorization.carry`: it outlives the interaction's
quarter of an hour, as long as the flow and its e-mail link live).

    stateDiagram-v2
        [*] --> proof_needed: the provider's contact belongs to an account (idp.services.social)
        proof_needed --> code_sent: «Получить код» to the account's confirmed phone
        proof_needed --> link_sent: a link to the account's confirmed e-mail
        code_sent --> proved: right code
        link_sent --> proved: link opened and confirmed by POST
        proof_needed --> linked: the account's password
        code_sent --> linked: the account's password
        link_sent --> linked: the account's password
        proved --> linked: identity linked, signed in
        linked --> [*]

The flow id lives in the browser's session that came back from the provider, so no other
browser can finish it; the password is checked by the sign-in service (same throttle, same
generic failure); codes and links by :class:`~idp.services.verification.ContactVerifier`
(one conditional ``UPDATE`` each). The link itself goes through the one audited seam
(:meth:`idp.services.social.SocialService.link_in_transaction`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from idp.adapters.sql.models import User, Verification
from idp.domain.errors import AuthenticationFailed, IdpError, NotFound
from idp.persistence import UnitOfWork
from idp.services.carried_authorization import CarriedAuthorization, carried_by, carry
from idp.services.verification import ContactVerifier

PROOF_TTL = 1800
LINK_TTL_MINUTES = 30
PROOF_TRANSITIONS = {
    "proof_needed": {"code_sent", "link_sent", "linked"},
    "code_sent": {"code_sent", "link_sent", "proved", "linked"},
    "link_sent": {"code_sent", "link_sent", "proved", "linked"},
    "proved": {"linked"},
}


class IllegalProofTransition(IdpError):
    code = "illegal_transition"


class NoProofChannel(IdpError):
    """The account has no confirmed contact of that kind to send a code or link to."""

    code = "no_channel"


def check_proof_transition(current: str, target: str) -> None:
    if target not in PROOF_TRANSITIONS.get(current, set()):
        raise IllegalProofTransition(f"social link cannot go from {current} to {target}")


@dataclass(frozen=True)
class SignedIn:
    """A social identity signs ``user`` in; ``authorization`` is the portal's request to
    resume (None: the main page, or the profile page after a re-sign-in)."""

    user: User
    provider: str
    authorization: CarriedAuthorization | None
    reauthenticated: bool = False  # a re-sign-in: back to «Персональная информация»


def new_proof_flow(
    user: User,
    kind: str,
    value: str,
    social: dict,
    authorization: CarriedAuthorization | None,
    now: int,
) -> Verification:
    """The flow's row in ``proof_needed`` (the caller adds it in its transaction)."""
    return Verification(
        id=str(uuid.uuid4()),
        purpose="social_link",
        state="proof_needed",
        user_id=user.id,
        contact_kind=kind,
        contact_value=value,
        payload=carry({"social": social}, authorization),
        created_at=now,
        expires_at=now + PROOF_TTL,
        attempts=0,
        code_failures=0,
        sends=0,
    )


class SocialProofService:
    def __init__(
        self,
        session: Session,
        uow: UnitOfWork,
        verifier: ContactVerifier,
        delivery,
        authenticate: Callable[[str, str, str], User],
        link: Callable[[str, dict], object],
        issuer: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = session
        self._uow = uow
        self._verifier = verifier
        self._delivery = delivery
        self._authenticate = authenticate
        self._link = link
        self._issuer = issuer
        self._clock = clock

    def get(self, flow_id: str | None) -> Verification:
        """The live flow; NotFound when unknown, expired or done."""
        row = self._verifier.load(flow_id, "social_link")
        if row.state == "linked":
            raise NotFound("the link is done")
        return row

    def phone(self, row: Verification) -> str | None:
        """The account's confirmed phone, where a proof code can go."""
        user = self._db.get(User, row.user_id)
        return user.phone if user is not None and user.phone_verified else None

    def email(self, row: Verification) -> str | None:
        """The account's confirmed e-mail, where a proof link can go."""
        user = self._db.get(User, row.user_id)
        return user.email if user is not None and user.email_verified else None

    def has_password(self, row: Verification) -> bool:
        user = self._db.get(User, row.user_id)
        return bool(user and user.password_hash)

    def prove_with_password(self, flow_id: str, password: str, address: str) -> SignedIn:
        """The account's own password (throttled like sign-in); then the identity is linked."""
        row = self.get(flow_id)
        check_proof_transition(row.state, "linked")
        user = self._authenticate(row.contact_value, password, address)
        if user.id != row.user_id:
            raise AuthenticationFailed("another account")
        return self._finish(row)

    def send_code(self, flow_id: str, address: str) -> Verification:
        with self._uow.transaction():
            row = self.get(flow_id)
            phone = self.phone(row)
            if phone is None:
                raise NoProofChannel("no confirmed phone")
            check_proof_transition(row.state, "code_sent")
            issued = self._verifier.issue_code(row)
            self._delivery.send_code_sms(phone, issued.secret, "social_link", address=address)
            row.state = "code_sent"
        return row

    def send_link(self, flow_id: str) -> Verification:
        with self._uow.transaction():
            row = self.get(flow_id)
            email = self.email(row)
            if email is None:
                raise NoProofChannel("no confirmed e-mail")
            check_proof_transition(row.state, "link_sent")
            issued = self._verifier.issue_link(row)
            # Built from the configured issuer, never from the request's Host (checklist 38).
            link = f"{self._issuer}/login/social/proof/{issued.secret}"
            self._delivery.send_link_email(email, link, "social_link", ttl_minutes=LINK_TTL_MINUTES)
            row.state = "link_sent"
        return row

    def by_link(self, token: str) -> Verification | None:
        row = self._verifier.find_by_link(token)
        return row if row is not None and row.purpose == "social_link" else None

    def prove_with_link(self, token: str) -> SignedIn:
        """The link's POST (a GET only shows a button: mail scanners change nothing)."""
        if self.by_link(token) is None:
            raise NotFound("no such link")
        return self._finish(self._verifier.check_link(token, "link_sent", "proved"))

    def prove_with_code(self, flow_id: str, code: str) -> SignedIn:
        row = self.get(flow_id)
        check_proof_transition(row.state, "proved")
        return self._finish(self._verifier.check_code(row.id, "code_sent", code, "proved"))

    def _finish(self, row: Verification) -> SignedIn:
        check_proof_transition(row.state, "linked")
        social = row.payload["social"]
        with self._uow.transaction():
            self._link(row.user_id, social)
            row.state, row.completed_at = "linked", int(self._clock())
        user = self._db.get(User, row.user_id)
        return SignedIn(user, social["provider"], carried_by(row.payload))

"""Registration (the seed's three steps) as a stored state machine over a Verification row.

    stateDiagram-v2
        [*] --> code_sent: step 1, new phone (or one held by another account: a decoy)
        [*] --> link_sent: step 1, new e-mail (or one held by another account: a decoy)
        [*] --> legacy: step 1, contact of a legacy cabinet account
        code_sent --> confirmed: right SMS code
        link_sent --> confirmed: link opened and confirmed by POST
        confirmed --> completed: password chosen, account created (step 3)
        confirmed --> completed: social sign-up: password optional, the identity linked
        legacy --> completed: legacy password + captcha, account upgraded
        legacy --> completed: social sign-up: upgraded, the identity linked

A contact already confirmed by another account gets exactly the answer a new one gets; its
owner is told by a message instead (no account enumeration, checklist item 26). A decoy flow's
secret is random and never sent, so it can never be confirmed.

A flow may carry two more fields in its payload: ``authorization``, the pending authorization
request that brought the person (:mod:`idp.services.carried_authorization`; resumed once the
account exists, so it outlives the interaction's own TTL),
and ``social``, the identity of a social sign-up (:mod:`idp.services.social`), linked in the
same transaction that creates the account. The contact is confirmed by our own code or link
all the same.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.adapters.sql.models import User, Verification
from idp.domain.contacts import parse_login
from idp.domain.errors import Conflict, IdpError, ValidationError
from idp.domain.regions import check_region
from idp.persistence import UnitOfWork
from idp.services.audit import AuditService
from idp.services.carried_authorization import CarriedAuthorization, carry
from idp.services.users import check_name
from idp.services.verification import ContactVerifier

FLOW_TTL = 24 * 3600
TRANSITIONS = {
    "code_sent": {"confirmed"},
    "link_sent": {"confirmed"},
    "confirmed": {"completed"},
    "legacy": {"completed"},
}


class IllegalTransition(IdpError):
    code = "illegal_transition"


@dataclass(frozen=True)
class Started:
    flow: Verification
    legacy: bool


def check_transition(current: str, target: str) -> None:
    if target not in TRANSITIONS.get(current, set()):
        raise IllegalTransition(f"registration cannot go from {current} to {target}")


class RegistrationService:
    def __init__(
        self,
        session: Session,
        uow: UnitOfWork,
        verifier: ContactVerifier,
        delivery,
        users,
        hasher,
        policy,
        legacy,
        issuer: str,
        terms_version: str = "2026-01",
        privacy_version: str = "2026-01",
        on_confirmed: Callable[[User], None] | None = None,
        clock: Callable[[], float] = time.time,
        link_social: Callable[[str, dict], object] | None = None,
        audit: AuditService | None = None,
    ) -> None:
        self._audit = audit or AuditService.in_memory(clock)
        self._db = session
        self._uow = uow
        self._verifier = verifier
        self._delivery = delivery
        self._users = users
        self._hasher = hasher
        self._policy = policy
        self._legacy = legacy
        self._issuer = issuer
        self._terms = terms_version
        self._privacy = privacy_version
        self._on_confirmed = on_confirmed
        self._clock = clock
        self._link_social = link_social

    def _now(self) -> int:
        return int(self._clock())

    # --- step 1 ---------------------------------------------------------------------------

    def start(
        self,
        family_name: str,
        given_name: str,
        middle_name: str | None,
        region: str,
        contact: str,
        accepted: bool,
        address: str,
        *,
        social: dict | None = None,
        authorization: CarriedAuthorization | None = None,
    ) -> Started:
        """Step 1. ``authorization``: the portal's request that sent the person here, kept
        by the flow until it ends (:mod:`idp.services.carried_authorization`)."""
        names = {
            "family_name": check_name(family_name, "family_name"),
            "given_name": check_name(given_name, "given_name"),
            "middle_name": check_name(middle_name, "middle_name", required=False),
        }
        region = check_region(region)
        if not accepted:
            raise ValidationError("accept the User Agreement and the Privacy Policy", "accept")
        try:
            kind, value = parse_login(contact)
        except ValidationError:
            raise ValidationError("enter a mobile number or an e-mail", "contact") from None
        extra = {"social": social} if social else {}
        with self._uow.transaction():
            return self._start(names, region, kind, value, address, extra, authorization)

    def _start(
        self,
        names: dict,
        region: str,
        kind: str,
        value: str,
        address: str,
        extra: dict,
        authorization: CarriedAuthorization | None,
    ) -> Started:
        owner = self._owner(kind, value)
        now = self._now()
        row = Verification(
            id=str(uuid.uuid4()),
            purpose="register",
            contact_kind=kind,
            contact_value=value,
            payload=carry(
                {
                    **names,
                    "region": region,
                    "terms_version": self._terms,
                    "privacy_version": self._privacy,
                    "accepted_at": now,
                    **extra,
                },
                authorization,
            ),
            created_at=now,
            expires_at=now + FLOW_TTL,
            attempts=0,
            code_failures=0,
            sends=0,
        )
        if owner is not None and owner.status == "legacy":
            row.state, row.user_id = "legacy", owner.id
            self._db.add(row)
            return Started(row, legacy=True)
        row.state = "code_sent" if kind == "phone" else "link_sent"
        if owner is not None:
            self._decoy(row, owner, address)
        elif kind == "phone":
            issued = self._verifier.issue_code(row)
            self._delivery.send_code_sms(value, issued.secret, "register", address=address)
        else:
            issued = self._verifier.issue_link(row)
            self._delivery.send_link_email(
                value, self._link(issued.secret), "register", ttl_minutes=24 * 60
            )
        # Delivery and the flow share the transaction: a failed delivery leaves nothing behind.
        self._db.add(row)
        return Started(row, legacy=False)

    def _owner(self, kind: str, value: str) -> User | None:
        column = User.phone if kind == "phone" else User.email
        return self._db.scalar(select(User).where(column == value))

    def _decoy(self, row: Verification, owner: User, address: str) -> None:
        """Same answer as for a new contact; the owner is told instead of being sent a code."""
        if row.contact_kind == "phone":
            self._verifier.issue_code(row)
        else:
            self._verifier.issue_link(row)
        self._verifier.blind(row)
        row.payload = {**row.payload, "decoy": True}
        self._delivery.check_available(row.contact_kind)  # refused as a free contact would be
        self._delivery.notify_contact(
            row.contact_kind, row.contact_value, "contact_in_use", address=address
        )

    def _link(self, token: str) -> str:
        # Built from the configured issuer, never from the request's Host (checklist 38).
        return f"{self._issuer}/confirm/{token}"

    # --- step 2 ---------------------------------------------------------------------------

    def get(self, flow_id: str | None) -> Verification:
        return self._verifier.load(flow_id, "register")

    def resend(self, flow_id: str, address: str) -> Verification:
        with self._uow.transaction():
            row = self.get(flow_id)
            if row.state != "code_sent":
                raise IllegalTransition("nothing to resend")
            issued = self._verifier.issue_code(row)
            if row.payload.get("decoy"):
                self._verifier.blind(row)
                self._delivery.check_available("phone")
                self._delivery.notify_contact(
                    "phone", row.contact_value, "contact_in_use", address=address
                )
            else:
                self._delivery.send_code_sms(
                    row.contact_value, issued.secret, "register", address=address
                )
        return row

    def confirm_code(self, flow_id: str, code: str) -> Verification:
        row = self.get(flow_id)
        check_transition(row.state, "confirmed")
        return self._verifier.check_code(row.id, "code_sent", code, "confirmed")

    def confirm_link(self, token: str) -> Verification:
        return self._verifier.check_link(token, "link_sent", "confirmed")

    def complete(self, flow_id: str, password: str | None) -> User:
        """Step 2's password, then step 3: the account exists, confirmed, signed in next.
        A social sign-up may go without a password (it signs in with its provider)."""
        row = self.get(flow_id)
        check_transition(row.state, "completed")
        p = row.payload
        social = p.get("social")
        if password or not social:
            personal = [p.get("family_name"), p.get("given_name"), p.get("middle_name")]
            self._policy.check(password or "", [*personal, row.contact_value])
        now = self._now()
        user = User(
            id=str(uuid.uuid4()),
            family_name=p["family_name"],
            given_name=p["given_name"],
            middle_name=p.get("middle_name"),
            region=p["region"],
            email=row.contact_value if row.contact_kind == "email" else None,
            email_verified=row.contact_kind == "email",
            phone=row.contact_value if row.contact_kind == "phone" else None,
            phone_verified=row.contact_kind == "phone",
            password_hash=self._hasher.hash(password) if password else None,
            locale="ru",
            status="active",
            terms_version=p["terms_version"],
            privacy_version=p["privacy_version"],
            terms_accepted_at=p["accepted_at"],
            created_at=now,
            updated_at=now,
            password_changed_at=now,
            # Committed with the account: the search for its billing accounts is never lost.
            auto_attach_pending_since=now,
        )
        try:
            with self._uow.transaction():
                self._db.add(user)
                row.state, row.user_id, row.completed_at = "completed", user.id, now
                self._db.flush()
                if social and self._link_social is not None:
                    self._link_social(user.id, social)
                self._audit.record(
                    "account.registered", subject=user.id, details={"via": row.contact_kind}
                )
        except IntegrityError:
            # Rolled back. Only the contact's unique constraint means "taken meanwhile"; any
            # other failure is ours, and the confirmed flow stays so that the person can retry.
            if self._owner(row.contact_kind, row.contact_value) is None:
                raise
            raise Conflict("the contact was registered meanwhile") from None
        if self._on_confirmed is not None:
            self._on_confirmed(user)
        return user

    # --- legacy cabinets ------------------------------------------------------------------

    def typed_names(self, row: Verification) -> dict:
        """The names typed in step 1 (the legacy page offers them instead of the imported)."""
        return {k: row.payload.get(k) for k in ("family_name", "given_name", "middle_name")}

    def upgrade_legacy(
        self, flow_id: str, password: str, use_typed_names: bool = False
    ) -> User | None:
        """The legacy account's password turns it into a cabinet account; None when wrong.
        The imported names are kept unless ``use_typed_names``: then step 1's replace them,
        in the same transaction. A social sign-up's identity is linked in it too (an identity
        linked to another account meanwhile: AlreadyLinked, and nothing changes)."""
        with self._uow.transaction():
            row = self.get(flow_id)
            check_transition(row.state, "completed")
            user = self._db.get(User, row.user_id)
            outcome = self._legacy.upgrade(user, password)
            if not outcome.ok:
                return None
            if use_typed_names:
                typed = self.typed_names(row)
                if typed["family_name"] and typed["given_name"]:
                    user.family_name = typed["family_name"]
                    user.given_name = typed["given_name"]
                    user.middle_name = typed["middle_name"]
                    user.updated_at = self._now()
            row.state, row.completed_at = "completed", self._now()
            social = row.payload.get("social")
            if social and self._link_social is not None:
                self._link_social(user.id, social)
        return user

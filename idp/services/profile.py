"""Personal information («Персональная информация»): password and contact changes, sessions.

Every change asks for the current password (ASVS 6.2.3 / 7.5.1), counted by the same
throttle as sign-in; a new contact is confirmed before it replaces the old one, and the old
contact is told (NIST SP 800-63B-4 §4.2: notify through an independent channel).

An account made by social sign-up without a password («Продолжить без пароля») has no
current password to give. For it the proof is a fresh sign-in instead (reauthentication in
NIST SP 800-63B's sense, the "sudo mode" of GitHub): the browser's session must have been
signed in within :data:`REAUTH_WINDOW`, else the person signs in again through a linked social
network (:meth:`idp.services.social.SocialService.begin` with ``reauth_user``), which brings
them back here with a new session. That is the very credential the account signs in with; a
one-time code to the contact was the other choice, but it adds a flow, a delivery and a
lockout for no stronger guarantee. Its limit: a provider that keeps its own session may
answer the round trip without asking the person again.

Contact change, per Verification row:

    stateDiagram-v2
        [*] --> code_sent: new phone
        [*] --> link_sent: new e-mail
        code_sent --> completed: right SMS code, contact replaced
        link_sent --> completed: link confirmed by POST, contact replaced
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.adapters.sql.models import User, Verification
from idp.domain.contacts import parse_login
from idp.domain.errors import (
    AuthenticationFailed,
    Conflict,
    IdpError,
    NotFound,
    ValidationError,
)
from idp.persistence import UnitOfWork
from idp.services.audit import AuditService
from idp.services.delivery import SmsRefused, mask_contact
from idp.services.registration import IllegalTransition
from idp.services.verification import ContactVerifier, SecretRejected

log = logging.getLogger(__name__)
FLOW_TTL = 24 * 3600
REAUTH_WINDOW = 10 * 60  # seconds: how fresh a sign-in stands in for a missing password


class FreshSignInNeeded(IdpError):
    """The account has no password and the session's sign-in is older than
    :data:`REAUTH_WINDOW`: the person signs in again through a linked social network."""

    code = "reauthentication_required"


class ProfileService:
    def __init__(
        self,
        session: Session,
        uow: UnitOfWork,
        verifier: ContactVerifier,
        delivery,
        hasher,
        policy,
        throttle,
        sessions,
        tokens,
        issuer: str,
        clock: Callable[[], float] = time.time,
        audit: AuditService | None = None,
    ) -> None:
        self._audit = audit or AuditService.in_memory(clock)
        self._db = session
        self._uow = uow
        self._verifier = verifier
        self._delivery = delivery
        self._hasher = hasher
        self._policy = policy
        self._throttle = throttle
        self._sessions = sessions
        self._tokens = tokens
        self._issuer = issuer
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    def is_fresh(self, auth_time: int | None) -> bool:
        """Whether a session signed in at ``auth_time`` counts as a fresh sign-in."""
        return auth_time is not None and auth_time > self._now() - REAUTH_WINDOW

    def _check_proof(self, user: User, password: str, address: str, auth_time: int | None) -> None:
        """The current password; for an account without one, a fresh sign-in (module note)."""
        if user.password_hash:
            self._check_current(user, password, address)
        elif not self.is_fresh(auth_time):
            raise FreshSignInNeeded("no password and a stale sign-in")

    def _check_current(self, user: User, password: str, address: str) -> None:
        """The current password, throttled like sign-in (checklist item 37)."""
        self._throttle.check_address(address)
        account = f"user:{user.id}"
        if not self._throttle.admit(account):
            self._hasher.verify(None, password)
            self._throttle.failed(address)
            raise AuthenticationFailed("locked")
        if not self._hasher.verify(user.password_hash, password):
            self._throttle.failed(address)
            raise AuthenticationFailed("wrong current password")
        self._throttle.succeeded(account)

    # --- password -------------------------------------------------------------------------

    def change_password(
        self,
        user: User,
        current: str,
        new: str,
        address: str,
        session_id: str | None,
        auth_time: int | None = None,
    ) -> None:
        """Change the password, or set the first one of an account made without one
        («Задать пароль»: ``current`` is not asked, a sign-in at ``auth_time`` must be fresh).
        Either way the same policy, the same end of other sessions and tokens, a notice."""
        self._check_proof(user, current, address, auth_time)
        first = not user.password_hash
        self._policy.check(
            new, [user.family_name, user.given_name, user.middle_name, user.phone, user.email]
        )
        password_hash = self._hasher.hash(new)
        # One unit of work: the new password, the end of other sessions and of every refresh
        # token (this browser stays signed in), and the notice, or none of them. The notice is
        # queued in the change's own transaction: sent after it commits, never instead of it.
        with self._uow.transaction():
            now = self._now()
            user.password_hash = password_hash
            user.password_changed_at = user.updated_at = now
            self._sessions.end_all(user.id, keep=session_id, reason="password_changed")
            self._tokens.revoke_for(user.id)
            event, notice = (
                ("password.set", "password_set")
                if first
                else ("password.changed", "password_changed")
            )
            self._audit.record(event, subject=user.id, address=address)
            for kind, value in (("email", user.email), ("phone", user.phone)):
                if value:
                    self._notify(kind, value, notice, address)
                    break

    def _notify(self, kind: str, value: str, template: str, address: str, **context) -> None:
        """Queue a notice about a change the user made; one the SMS guard refuses is dropped
        with a log line (the change itself stands)."""
        try:
            self._delivery.notify_contact(kind, value, template, address=address, **context)
        except SmsRefused as refused:
            log.warning("notice %s to %s not sent: %s", template, mask_contact(value), refused)

    # --- contacts -------------------------------------------------------------------------

    def start_contact_change(
        self, user: User, contact: str, current: str, address: str, auth_time: int | None = None
    ) -> Verification:
        """Begin a contact change; proven by the current password, or for an account without
        one by a fresh sign-in at ``auth_time``."""
        self._check_proof(user, current, address, auth_time)
        try:
            kind, value = parse_login(contact)
        except ValidationError:
            raise ValidationError("enter a mobile number or an e-mail", "contact") from None
        if value in (user.phone, user.email):
            raise ValidationError("this is already your contact", "contact")
        with self._uow.transaction():
            return self._start_change(user, kind, value, address)

    def _start_change(self, user: User, kind: str, value: str, address: str) -> Verification:
        column = User.phone if kind == "phone" else User.email
        taken = self._db.scalar(select(User.id).where(column == value)) is not None
        now = self._now()
        row = Verification(
            id=str(uuid.uuid4()),
            purpose="change_contact",
            user_id=user.id,
            contact_kind=kind,
            contact_value=value,
            state="code_sent" if kind == "phone" else "link_sent",
            payload={},
            created_at=now,
            expires_at=now + FLOW_TTL,
            attempts=0,
            code_failures=0,
            sends=0,
        )
        if kind == "phone":
            issued = self._verifier.issue_code(row)
            if not taken:
                self._delivery.send_code_sms(
                    value, issued.secret, "change_contact", address=address
                )
        else:
            issued = self._verifier.issue_link(row)
            if not taken:
                self._delivery.send_link_email(
                    value,
                    f"{self._issuer}/confirm/{issued.secret}",
                    "change_contact",
                    ttl_minutes=24 * 60,
                )
        if taken:  # the same answer, but a flow that can never complete
            self._verifier.blind(row)
            self._delivery.check_available(kind)
        self._db.add(row)
        return row

    def get_change(self, user: User, flow_id: str | None) -> Verification:
        row = self._verifier.load(flow_id, "change_contact")
        if row.user_id != user.id:
            raise NotFound("no such contact change")
        return row

    def confirm_contact_code(self, user: User, flow_id: str, code: str, address: str) -> User:
        row = self.get_change(user, flow_id)
        if row.state != "code_sent":
            raise IllegalTransition("not waiting for a code")
        # One unit of work: the spent code, the new contact and the notice, or none of them
        # (a wrong code is counted all the same: it is returned, then raised after commit).
        with self._uow.transaction():
            outcome = self._verifier.attempt_code(row.id, "code_sent", code, "completed")
            if not isinstance(outcome, SecretRejected):
                return self._replace(outcome, address)
        raise outcome

    def confirm_contact_link(self, token: str, address: str) -> User:
        with self._uow.transaction():
            outcome = self._verifier.attempt_link(token, "link_sent", "completed")
            if not isinstance(outcome, SecretRejected):
                return self._replace(outcome, address)
        raise outcome

    def _replace(self, row: Verification, address: str) -> User:
        with self._uow.transaction():
            user = self._db.get(User, row.user_id)
            old = user.phone if row.contact_kind == "phone" else user.email
            if row.contact_kind == "phone":
                user.phone, user.phone_verified = row.contact_value, True
            else:
                user.email, user.email_verified = row.contact_value, True
            user.updated_at = self._now()
            try:
                self._db.flush()
            except IntegrityError:
                raise Conflict("the contact was taken meanwhile") from None
            self._audit.record(
                "contact.changed",
                subject=user.id,
                address=address,
                details={"kind": row.contact_kind, "added": not old},
            )
            # Tell the account through a contact it already had: the replaced one, or else
            # the other kind (adding an e-mail is announced to the phone). Queued with the change.
            other_kind = "email" if row.contact_kind == "phone" else "phone"
            other = user.email if other_kind == "email" else user.phone
            if old:
                self._notify(row.contact_kind, old, "contact_changed", address)
            elif other:
                self._notify(
                    other_kind, other, "contact_added", address, new_contact=row.contact_value
                )
        return user

    # --- sessions -------------------------------------------------------------------------

    def end_other_sessions(self, user: User, session_id: str) -> None:
        self._sessions.end_all(user.id, keep=session_id, reason="ended_by_person")

"""Password recovery («Восстановить пароль») as a stored state machine.

    stateDiagram-v2
        [*] --> code_sent: login is a phone (a decoy when no account has it)
        [*] --> link_sent: login is an e-mail (a decoy when no account has it)
        code_sent --> confirmed: right SMS code
        link_sent --> confirmed: link confirmed by POST
        confirmed --> completed: new password; every session and refresh token revoked

The answer is the same whether or not the contact belongs to an account (checklist item 38);
nobody is signed in afterwards: the user signs in anew with the new password.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.adapters.sql.models import User, Verification
from idp.domain.contacts import parse_login
from idp.domain.errors import ValidationError
from idp.persistence import UnitOfWork
from idp.services.audit import AuditService
from idp.services.carried_authorization import CarriedAuthorization, carry
from idp.services.registration import IllegalTransition
from idp.services.verification import ContactVerifier

FLOW_TTL = 3600
TRANSITIONS = {"code_sent": {"confirmed"}, "link_sent": {"confirmed"}, "confirmed": {"completed"}}


class RecoveryService:
    def __init__(
        self,
        session: Session,
        uow: UnitOfWork,
        verifier: ContactVerifier,
        delivery,
        hasher,
        policy,
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
        self._sessions = sessions
        self._tokens = tokens
        self._issuer = issuer
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    def start(
        self, login: str, address: str, authorization: CarriedAuthorization | None = None
    ) -> Verification:
        """``authorization``: the portal's request that sent the person here, kept by the
        flow until it ends (:mod:`idp.services.carried_authorization`)."""
        try:
            kind, value = parse_login(login)
        except ValidationError:
            raise ValidationError("enter your phone number or e-mail", "login") from None
        with self._uow.transaction():
            return self._start(kind, value, address, authorization)

    def _start(
        self, kind: str, value: str, address: str, authorization: CarriedAuthorization | None
    ) -> Verification:
        column = User.phone if kind == "phone" else User.email
        verified = User.phone_verified if kind == "phone" else User.email_verified
        user = self._db.scalar(
            select(User).where(column == value, verified.is_(True), User.status == "active")
        )
        now = self._now()
        row = Verification(
            id=str(uuid.uuid4()),
            purpose="recover",
            contact_kind=kind,
            contact_value=value,
            state="code_sent" if kind == "phone" else "link_sent",
            user_id=user.id if user else None,
            payload=carry({}, authorization),
            created_at=now,
            expires_at=now + FLOW_TTL,
            attempts=0,
            code_failures=0,
            sends=0,
        )
        if kind == "phone":
            issued = self._verifier.issue_code(row)
            # The guard counts an unknown number the same as a known one: no enumeration.
            if user is not None:
                self._delivery.send_code_sms(value, issued.secret, "recover", address=address)
            else:
                self._delivery.count_decoy_sms(value, address)
        else:
            issued = self._verifier.issue_link(row)
            if user is not None:
                self._delivery.send_link_email(
                    value, f"{self._issuer}/recover/{issued.secret}", "recover", ttl_minutes=60
                )
        if user is None:
            self._verifier.blind(row)
            self._delivery.check_available(kind)  # refused as a known contact would be
        self._db.add(row)
        return row

    def get(self, flow_id: str | None) -> Verification:
        return self._verifier.load(flow_id, "recover")

    def resend(self, flow_id: str, address: str) -> Verification:
        with self._uow.transaction():
            row = self.get(flow_id)
            if row.state != "code_sent":
                raise IllegalTransition("nothing to resend")
            issued = self._verifier.issue_code(row)
            if row.user_id:
                self._delivery.send_code_sms(
                    row.contact_value, issued.secret, "recover", address=address
                )
            else:
                self._verifier.blind(row)
                self._delivery.count_decoy_sms(row.contact_value, address)
        return row

    def confirm_code(self, flow_id: str, code: str) -> Verification:
        row = self.get(flow_id)
        if "confirmed" not in TRANSITIONS.get(row.state, set()):
            raise IllegalTransition("not waiting for a code")
        return self._verifier.check_code(row.id, "code_sent", code, "confirmed")

    def confirm_link(self, token: str) -> Verification:
        return self._verifier.check_link(token, "link_sent", "confirmed")

    def reset(self, flow_id: str, password: str) -> User:
        row = self.get(flow_id)
        if "completed" not in TRANSITIONS.get(row.state, set()) or not row.user_id:
            raise IllegalTransition("the contact is not confirmed")
        user = self._db.get(User, row.user_id)
        self._policy.check(
            password, [user.family_name, user.given_name, user.middle_name, user.phone, user.email]
        )
        password_hash = self._hasher.hash(password)
        # One unit of work: the new password, the completed flow, and the end of every
        # session and refresh token of the account (OWASP Forgot Password), or none of them.
        with self._uow.transaction():
            now = self._now()
            user.password_hash = password_hash
            user.password_changed_at = user.updated_at = now
            row.state, row.completed_at = "completed", now
            self._sessions.end_all(user.id, reason="password_recovered")
            self._tokens.revoke_for(user.id)
            self._audit.record(
                "password.recovered", subject=user.id, details={"via": row.contact_kind}
            )
        return user

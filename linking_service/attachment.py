"""The seed's four-step attachment wizard as a server-side flow (state machine in
:mod:`linking_service.domain`). A move of holder is one compare-and-swap on the link's version
in the transaction that also writes the outbox event, so two callers racing for one account
can never both win (checklist item 43); refusals reveal nothing about accounts the caller could
not prove (item 42); proofs are limited per service login and per identity (item 41)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from linking_service.adapters.sql.db import transaction
from linking_service.adapters.sql.limits import SqlAttemptCounter
from linking_service.adapters.sql.models import FlowRow, LinkEventRow, LinkRow
from linking_service.config import LinkingSettings
from linking_service.domain import (
    TERMINAL,
    AttachedAccount,
    BillingAccount,
    ConcurrentChange,
    EventType,
    FailedPrecondition,
    Flow,
    FlowState,
    InternetProof,
    InvalidArgument,
    LookupKind,
    NotFound,
    PhoneProof,
    RefusalReason,
    ServiceType,
    TooManyAttempts,
    check_account_number,
    check_transition,
    phone_number,
    service_login,
)
from linking_service.ports import BillingDirectory
from linking_service.regions import check_region

MAX_CANDIDATES = 5


class AttachmentService:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        directory: BillingDirectory,
        settings: LinkingSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._sessions = sessions
        self._directory = directory
        self._settings = settings
        self._clock = clock
        self._counter = SqlAttemptCounter(sessions)

    def _now(self) -> int:
        return int(self._clock())

    def _limit(self, key: str, maximum: int) -> None:
        count, retry = self._counter.count(key, self._now())
        if count >= maximum:
            raise TooManyAttempts(retry)

    def start(
        self,
        subject: str,
        region: str,
        kind: LookupKind,
        value: str,
        service_type: ServiceType | None,
    ) -> Flow:
        """Step 1. Resolves the lookup to candidate accounts but never tells the caller."""
        region = check_region(region)
        s = self._settings
        flows_key = f"flows:{subject}"
        self._limit(flows_key, s.identity_max_flows)
        candidates: list[BillingAccount] = []
        state = FlowState.CHOOSE_SERVICE
        if kind is LookupKind.ACCOUNT_NUMBER:
            value = check_account_number(value)
            account = self._directory.find_account(value)
            candidates = [account] if account else []
        elif kind is LookupKind.PHONE:
            value = phone_number(value)
            candidates = self._directory.accounts_by_phone(region, value)[:MAX_CANDIDATES]
        else:
            value = service_login(value)
            if service_type is not ServiceType.HOME_INTERNET:
                raise InvalidArgument("a service login belongs to Home Internet")
            account = self._directory.account_by_service_login(value)
            candidates = [account] if account else []
            state = FlowState.PROVE
        candidates = [a for a in candidates if a.region == region]
        self._counter.hit(flows_key, 3600, self._now())
        now = self._now()
        with transaction(self._sessions) as db:
            versions = {}
            for account in candidates:
                link = db.get(LinkRow, account.number)
                versions[account.number] = link.version if link else 0
            row = FlowRow(
                id=str(uuid.uuid4()),
                subject=subject,
                state=state,
                region=region,
                lookup_kind=kind,
                lookup_value=value,
                service_type=service_type if state is FlowState.PROVE else None,
                candidates=versions,
                created_at=now,
                expires_at=now + s.flow_ttl,
            )
            db.add(row)
        return self._view(row)

    def _load(self, db: Session, subject: str, flow_id: str) -> FlowRow:
        try:
            uuid.UUID(flow_id)
        except (ValueError, AttributeError, TypeError):
            raise NotFound("no such flow") from None
        row = db.get(FlowRow, flow_id)
        if row is None or row.subject != subject:
            raise NotFound("no such flow")
        if FlowState(row.state) not in TERMINAL and row.expires_at <= self._now():
            row.state = FlowState.EXPIRED
        return row

    def get(self, subject: str, flow_id: str) -> Flow:
        with transaction(self._sessions) as db:
            row = self._load(db, subject, flow_id)
        # Viewed after the commit: an attached flow's view reads the billing directory in a
        # session of its own, which on SQLite (BEGIN IMMEDIATE) would wait for this one.
        return self._view(row)

    def _active(self, db: Session, subject: str, flow_id: str, expected: FlowState) -> FlowRow:
        row = self._load(db, subject, flow_id)
        state = FlowState(row.state)
        if state is FlowState.EXPIRED:
            db.commit()
            raise FailedPrecondition("the flow has expired", "FLOW_EXPIRED")
        if state is not expected:
            raise FailedPrecondition(f"the flow is in state {state}, not {expected}")
        return row

    def choose(self, subject: str, flow_id: str, service_type: ServiceType) -> Flow:
        """Step 2."""
        with transaction(self._sessions) as db:
            row = self._active(db, subject, flow_id, FlowState.CHOOSE_SERVICE)
            check_transition(FlowState(row.state), FlowState.PROVE)
            row.state = FlowState.PROVE
            row.service_type = service_type
            return self._view(row)

    def prove(self, subject: str, flow_id: str, proof: InternetProof | PhoneProof) -> Flow:
        """Step 3 → step 4. Throttled per service login/number and per identity; the same
        answer for an unknown login and a wrong password (checklist item 41)."""
        with transaction(self._sessions) as db:
            row = self._active(db, subject, flow_id, FlowState.PROVE)
            candidates = dict(row.candidates or {})
            wanted = ServiceType(row.service_type)
        if isinstance(proof, InternetProof):
            if wanted is not ServiceType.HOME_INTERNET:
                raise InvalidArgument("the flow expects a Home Phone proof")
            credential = service_login(proof.login)
            secret = proof.password
            if not 1 <= len(secret) <= 128:
                raise InvalidArgument("the password must have 1 to 128 characters")
        else:
            if wanted is not ServiceType.HOME_PHONE:
                raise InvalidArgument("the flow expects a Home Internet proof")
            credential = phone_number(proof.phone)
            secret = proof.pin
            if not (secret.isascii() and secret.isdigit() and 4 <= len(secret) <= 8):
                raise InvalidArgument("a PIN has 4 to 8 digits")
        s = self._settings
        login_key, identity_key = f"proof:{wanted}:{credential}", f"proof-id:{subject}"
        self._limit(login_key, s.login_max_failures)
        self._limit(identity_key, s.identity_max_failures)

        target = self._target(candidates, wanted, credential)
        # No candidate still costs one verification ("" matches no account): same timing.
        if wanted is ServiceType.HOME_INTERNET:
            ok = self._directory.verify_internet(target or "", credential, secret)
        else:
            ok = self._directory.verify_phone(target or "", credential, secret)
        now = self._now()
        if not ok:
            self._counter.hit(login_key, s.login_window, now)
            self._counter.hit(identity_key, s.identity_window, now)
            return self._finish(subject, flow_id, FlowState.REFUSED, RefusalReason.PROOF_FAILED)
        self._counter.reset(login_key)
        account = self._directory.find_account(target) if target else None
        if account is None or not account.active:
            return self._finish(subject, flow_id, FlowState.REFUSED, RefusalReason.ACCOUNT_INACTIVE)
        return self._attach(subject, flow_id, account, candidates[target])

    def _target(self, candidates: dict[str, int], kind: ServiceType, credential: str) -> str | None:
        """The candidate account that holds the service named in the proof, if any."""
        for number in candidates:
            account = self._directory.find_account(number)
            for service in account.services if account else ():
                if service.kind is kind and credential in (service.login, service.phone):
                    return number
        return None

    def _finish(
        self,
        subject: str,
        flow_id: str,
        state: FlowState,
        reason: RefusalReason | None = None,
        account: str | None = None,
    ) -> Flow:
        with transaction(self._sessions) as db:
            row = self._load(db, subject, flow_id)
            check_transition(FlowState(row.state), state)
            row.state, row.refusal_reason, row.account_number = state, reason, account
            return self._view(row)

    def _attach(self, subject: str, flow_id: str, account: BillingAccount, seen: int) -> Flow:
        """Compare-and-swap the holder, write the outbox event and close the flow, atomically."""
        now = self._now()
        try:
            with transaction(self._sessions) as db:
                flow = self._load(db, subject, flow_id)
                check_transition(FlowState(flow.state), FlowState.ATTACHED)
                link = db.get(LinkRow, account.number, with_for_update=True)
                previous = link.subject if link else None
                if previous == subject:
                    state = FlowState.ATTACHED
                else:
                    if link is None:
                        if seen != 0:
                            raise ConcurrentChange("the account changed meanwhile")
                        db.add(
                            LinkRow(
                                account_number=account.number,
                                subject=subject,
                                version=1,
                                attached_at=now,
                            )
                        )
                        db.flush()
                    else:
                        moved = db.execute(
                            update(LinkRow)
                            .where(
                                LinkRow.account_number == account.number, LinkRow.version == seen
                            )
                            .values(subject=subject, version=LinkRow.version + 1, attached_at=now)
                        ).rowcount
                        if moved != 1:
                            raise ConcurrentChange("the account changed meanwhile")
                    state = FlowState.REATTACHED if previous else FlowState.ATTACHED
                    db.add(
                        LinkEventRow.new(
                            EventType.REATTACHED if previous else EventType.ATTACHED,
                            account.number,
                            subject,
                            previous,
                            now,
                        )
                    )
                flow.state, flow.account_number = state, account.number
                return self._view(flow, account)
        except IntegrityError:
            raise ConcurrentChange("the account changed meanwhile") from None

    def _view(self, row: FlowRow, account: BillingAccount | None = None) -> Flow:
        state = FlowState(row.state)
        attached = None
        if state in (FlowState.ATTACHED, FlowState.REATTACHED) and row.account_number:
            account = account or self._directory.find_account(row.account_number)
            attached = AttachedAccount(
                row.account_number,
                account.region if account else row.region,
                self._now(),
                tuple(dict.fromkeys(s.kind for s in account.services)) if account else (),
            )
        return Flow(
            id=row.id,
            state=state,
            service_type=ServiceType(row.service_type) if row.service_type else None,
            expires_at=row.expires_at,
            account=attached,
            refusal_reason=RefusalReason(row.refusal_reason) if row.refusal_reason else None,
        )

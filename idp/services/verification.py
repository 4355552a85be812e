"""One-time secrets that prove control of a contact, shared by every self-service flow.

* SMS: a 6-digit code (NIST SP 800-63B §5.1.3: ≥ 20 bits, ≤ 10 minutes), at most 5 wrong
  answers per code and 20 per flow; a new code invalidates the old one and resets only the
  per-code count; resending waits 300 s, then 600 s, 1200 s… and at most 5 codes are sent.
* E-mail: a 256-bit link token valid 24 hours, single use, confirmed by POST only.

Every check is one conditional ``UPDATE`` so parallel submissions of one valid secret succeed
exactly once (checklist item 23) and wrong answers are all counted (item 22). A check is a
unit of work of its own, committed before a rejection is raised: a wrong answer stays counted.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp.adapters.sql.models import Verification
from idp.domain.errors import IdpError, NotFound, Throttled
from idp.persistence import UnitOfWork
from idp.services.crypto import new_token, sha256_hex

CODE_TTL = 600
LINK_TTL = 24 * 3600
MAX_CODE_FAILURES = 5
MAX_FLOW_FAILURES = 20
RESEND_COOLDOWN = 300
MAX_SENDS = 5


class SecretRejected(IdpError):
    """A code or link did not confirm; ``reason`` is one of wrong, expired, exhausted, used."""

    code = "secret_rejected"

    def __init__(self, reason: str, tries_left: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.tries_left = tries_left


@dataclass(frozen=True)
class Issued:
    secret: str
    expires_at: int


class ContactVerifier:
    def __init__(
        self, session: Session, uow: UnitOfWork, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = session
        self._uow = uow
        self._clock = clock

    def _now(self) -> int:
        return int(self._clock())

    def load(self, flow_id: str | None, purpose: str) -> Verification:
        """The live flow ``flow_id`` of ``purpose``; NotFound when unknown or expired."""
        row = self._db.get(Verification, flow_id) if flow_id else None
        if row is None or row.purpose != purpose or row.expires_at <= self._now():
            raise NotFound(f"no such {purpose} flow")
        return row

    @staticmethod
    def blind(row: Verification) -> None:
        """Make ``row`` a decoy: its secret is one nobody knows, so it can never be confirmed,
        while the caller sees exactly what a real flow shows (no enumeration)."""
        row.secret_hash = sha256_hex(new_token(32))

    def cooldown(self, row: Verification) -> int:
        """Seconds before another code may be sent (doubling with every send)."""
        if row.last_sent_at is None:
            return 0
        wait = RESEND_COOLDOWN * 2 ** max(0, row.sends - 1)
        return max(0, row.last_sent_at + wait - self._now())

    def issue_code(self, row: Verification) -> Issued:
        """A new SMS code for ``row``; refuses while the cooldown runs or after MAX_SENDS."""
        wait = self.cooldown(row)
        if wait > 0:
            raise Throttled(wait)
        if row.sends >= MAX_SENDS:
            raise Throttled(max(1, row.expires_at - self._now()))
        code = f"{secrets.randbelow(1_000_000):06d}"
        now = self._now()
        row.secret_hash = sha256_hex(f"{row.id}:{code}")
        row.secret_expires_at = now + CODE_TTL
        row.code_failures = 0
        row.sends += 1
        row.last_sent_at = now
        return Issued(code, now + CODE_TTL)

    def issue_link(self, row: Verification) -> Issued:
        token = new_token(32)
        now = self._now()
        row.secret_hash = sha256_hex(token)
        row.secret_expires_at = now + LINK_TTL
        row.sends += 1
        row.last_sent_at = now
        return Issued(token, now + LINK_TTL)

    def check_code(self, row_id: str, state: str, code: str, next_state: str) -> Verification:
        """Move ``row_id`` from ``state`` to ``next_state`` if ``code`` is right; else count
        the failure and raise :class:`SecretRejected`. A unit of work of its own."""
        return self._own(lambda: self.attempt_code(row_id, state, code, next_state))

    def attempt_code(
        self, row_id: str, state: str, code: str, next_state: str
    ) -> Verification | SecretRejected:
        """:meth:`check_code` as a step of the caller's unit of work: the rejection is
        returned, so the caller's block commits the counted failure before raising it."""
        code = (code or "").strip().replace(" ", "")
        digest = sha256_hex(f"{row_id}:{code}") if code.isdigit() and len(code) == 6 else "-"
        with self._uow.transaction():
            return self._attempt(row_id, state, digest, next_state, count_failure=True)

    def find_by_link(self, token: str) -> Verification | None:
        if not token or len(token) > 100:
            return None
        return self._db.scalar(
            select(Verification).where(Verification.secret_hash == sha256_hex(token))
        )

    def check_link(self, token: str, state: str, next_state: str) -> Verification:
        return self._own(lambda: self.attempt_link(token, state, next_state))

    def attempt_link(
        self, token: str, state: str, next_state: str
    ) -> Verification | SecretRejected:
        """:meth:`check_link` as a step of the caller's unit of work (see attempt_code)."""
        row = self.find_by_link(token)
        if row is None:
            return SecretRejected("wrong")
        with self._uow.transaction():
            return self._attempt(row.id, state, sha256_hex(token), next_state, False)

    def _own(self, attempt: Callable[[], Verification | SecretRejected]) -> Verification:
        if self._uow.active:
            # An enclosing block that rolls back on the rejection would forget the failure.
            raise RuntimeError("check_* runs in a unit of work of its own; use attempt_*")
        outcome = attempt()
        if isinstance(outcome, SecretRejected):
            raise outcome
        return outcome

    def _attempt(
        self, row_id: str, state: str, digest: str, next_state: str, count_failure: bool
    ) -> Verification | SecretRejected:
        now = self._now()
        won = self._db.execute(
            update(Verification)
            .where(
                Verification.id == row_id,
                Verification.state == state,
                Verification.secret_hash == digest,
                Verification.secret_expires_at > now,
                Verification.expires_at > now,
                Verification.code_failures < MAX_CODE_FAILURES,
                Verification.attempts < MAX_FLOW_FAILURES,
            )
            .values(state=next_state, secret_hash=None, completed_at=now)
        ).rowcount
        row = self._db.get(Verification, row_id)
        self._db.refresh(row)
        if won == 1:
            return row
        if row.state != state:
            return SecretRejected("used")
        if row.expires_at <= now or (row.secret_expires_at or 0) <= now:
            return SecretRejected("expired")
        if row.code_failures >= MAX_CODE_FAILURES or row.attempts >= MAX_FLOW_FAILURES:
            return SecretRejected("exhausted")
        if count_failure:
            self._db.execute(
                update(Verification)
                .where(Verification.id == row_id)
                .values(
                    attempts=Verification.attempts + 1, code_failures=Verification.code_failures + 1
                )
            )
            self._db.refresh(row)
        left = max(0, min(MAX_CODE_FAILURES - row.code_failures, MAX_FLOW_FAILURES - row.attempts))
        return SecretRejected("wrong" if left else "exhausted", left)

"""Automatic attachment at "account confirmed", kept until it has run once.

Registration creates the account with ``users.auto_attach_pending_since`` set, in the same
transaction as the account itself, so no crash can lose the search. :meth:`AutoAttachService.run`
then asks the linking service (``AutoAttach``, the IdP's own ``linking:auto`` token); when the
service answers, the attached numbers go to ``users.auto_attached`` (the main page's «привязаны
автоматически») and the flag is cleared. When it cannot answer, the flag stays and the search
is retried — at the person's next visit of the main page and by ``idp worker``
(:meth:`retry_pending`) — until it has run once.

Nothing is attached twice: every attempt for one account carries the same request id
(``register-<sub>``), so the linking service runs the search once and answers a repeat with
the first answer (``protos/linking/v1/linking.proto``, idempotency). A repeat whose payload
differs (the person changed their name meanwhile) is ``REQUEST_ID_REUSED``: the search has
run, its answer was lost, and the accounts it attached are listed by ``ListAccounts`` anyway;
the flag is cleared without numbers. Other refusals (``INVALID_REGION``, ``INVALID_REQUEST``)
cannot succeed on a retry either and end the same way, logged.

    stateDiagram-v2
        [*] --> pending: account created (registration step 3)
        pending --> pending: linking service unavailable / internal error / token refused
        pending --> done: answered (numbers kept) or refused for good
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from idp.adapters.sql.models import User
from idp.domain.errors import LinkingFailed
from idp.persistence import UnitOfWork
from idp.ports import LinkingClient

log = logging.getLogger(__name__)

# Refusals about the request itself: the same request can never succeed.
FINAL_REASONS = frozenset(
    {
        "REQUEST_ID_REUSED",
        "INVALID_REGION",
        "INVALID_REQUEST",
        "INVALID_PHONE",
        "INVALID_ACCOUNT_NUMBER",
        "INVALID_LOGIN",
    }
)
# Failures in a row that end a sweep early (each may have waited for the call's timeout).
MISSES_PER_SWEEP = 3


class AutoAttachService:
    def __init__(
        self,
        session: Session,
        uow: UnitOfWork,
        linking: Callable[[], LinkingClient],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = session
        self._uow = uow
        self._linking = linking
        self._clock = clock

    @staticmethod
    def pending(user: User) -> bool:
        return user.auto_attach_pending_since is not None

    def run(self, user: User) -> bool:
        """Search once for ``user`` if still pending; True when the search has run (now or
        before), False when it must be retried. Never raises for the linking service."""
        if not self.pending(user):
            return True
        try:
            numbers = self._linking().auto_attach(user)
        except LinkingFailed as exc:
            if exc.reason not in FINAL_REASONS:
                log.warning("automatic attachment for %s will be retried: %s", user.id, exc.reason)
                return False
            log.warning("automatic attachment for %s refused: %s", user.id, exc.reason)
            numbers = []
        with self._uow.transaction():
            # Conditional: of two runs at once (a visit and the worker) one records the answer;
            # both got the same one from the linking service.
            self._db.execute(
                update(User)
                .where(User.id == user.id, User.auto_attach_pending_since.is_not(None))
                .values(auto_attach_pending_since=None, auto_attached=list(numbers))
                .execution_options(synchronize_session=False)
            )
        self._db.refresh(user)
        self._uow.end_read()
        return True

    def retry_pending(self, limit: int = 20) -> int:
        """``idp worker``'s sweep: run the oldest pending searches; how many have now run."""
        users = list(
            self._db.scalars(
                select(User)
                .where(User.auto_attach_pending_since.is_not(None), User.status == "active")
                .order_by(User.auto_attach_pending_since)
                .limit(limit)
            )
        )
        self._uow.end_read()
        done = misses = 0
        for user in users:
            if self.run(user):
                done, misses = done + 1, 0
                continue
            misses += 1
            if misses == MISSES_PER_SWEEP:
                break  # the service is still away: try the rest at the next sweep
        return done


def sweep_until(
    retry: Callable[[], int],
    stop,
    every: float,
    context: Callable[[], AbstractContextManager] = contextlib.nullcontext,
) -> None:
    """``idp worker``'s automatic-attachment lane: ``retry()`` (in ``context``) at once and
    then every ``every`` seconds until ``stop`` (anything with ``wait(timeout)``) is set."""
    while True:
        try:
            with context():
                retry()
        except Exception:  # noqa: BLE001 - a database hiccup must not end the worker
            log.exception("automatic attachment sweep failed; retrying")
        if stop.wait(every):
            return

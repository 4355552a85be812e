"""Idempotent mutating calls: the same request id and payload get the first answer again.

A draft-ietf-httpapi-idempotency-key-header–style store: the first call claims the id (an
insert that only one caller can win), runs, and records its serialized answer. A retry with
the same payload gets that answer; with another payload, ``REQUEST_ID_REUSED``; while the
first is still running, ``REQUEST_IN_PROGRESS`` (retry later). A failed call releases the id.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from linking_service.adapters.sql.db import transaction
from linking_service.adapters.sql.models import IdempotencyRow
from linking_service.domain import ConcurrentChange, InvalidArgument


def check_request_id(request_id: str) -> str:
    if not 1 <= len(request_id) <= 64 or not all(33 <= ord(c) < 127 for c in request_id):
        raise InvalidArgument("request_id must be 1 to 64 printable ASCII characters")
    return request_id


class SqlIdempotency:
    def __init__(self, sessions: sessionmaker[Session], clock: Callable[[], float] = time.time):
        self._sessions = sessions
        self._clock = clock

    def run(
        self, subject: str, request_id: str, method: str, payload: bytes, call: Callable[[], bytes]
    ) -> bytes:
        check_request_id(request_id)
        digest = hashlib.sha256(method.encode() + b"\0" + payload).hexdigest()
        try:
            with transaction(self._sessions) as db:
                db.add(
                    IdempotencyRow(
                        subject=subject,
                        request_id=request_id,
                        method=method,
                        payload_hash=digest,
                        created_at=int(self._clock()),
                    )
                )
        except IntegrityError:
            with transaction(self._sessions) as db:
                row = db.get(IdempotencyRow, (subject, request_id))
            if row is None:
                raise ConcurrentChange("retry", "REQUEST_IN_PROGRESS") from None
            if row.payload_hash != digest:
                raise InvalidArgument(
                    "request_id was used for another request", "REQUEST_ID_REUSED"
                ) from None
            if row.response is None:
                raise ConcurrentChange(
                    "the first request with this id is still running", "REQUEST_IN_PROGRESS"
                ) from None
            return row.response
        try:
            response = call()
        except BaseException:
            with transaction(self._sessions) as db:
                db.execute(
                    delete(IdempotencyRow).where(
                        IdempotencyRow.subject == subject, IdempotencyRow.request_id == request_id
                    )
                )
            raise
        with transaction(self._sessions) as db:
            row = db.get(IdempotencyRow, (subject, request_id))
            row.response = response
        return response

"""Idempotent mutating calls: the same request id and payload get the first answer again.

A draft-ietf-httpapi-idempotency-key-header–style store, with the claim of the id, the work
and the recorded answer in ONE transaction (:func:`~linking_service.adapters.sql.db.unit_of_work`):
either all three commit or none does. A call cut by a crash leaves nothing behind, so its
retry simply runs (and gets the real answer); a call that failed records nothing either. A
retry that arrives while the first call still runs waits for it (PostgreSQL's unique index
holds the second insert until the first transaction ends; SQLite runs writers one at a time)
and then gets its answer. The same id with another payload is ``REQUEST_ID_REUSED``.

The payload digest is an HMAC keyed with the service's secret: a payload may hold a password
or a PIN, and a plain hash of a 4-digit PIN is reversed by trying 10,000 of them.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from linking_service.adapters.sql.db import unit_of_work
from linking_service.adapters.sql.models import IdempotencyRow
from linking_service.domain import InvalidArgument


def check_request_id(request_id: str) -> str:
    if not 1 <= len(request_id) <= 64 or not all(33 <= ord(c) < 127 for c in request_id):
        raise InvalidArgument("request_id must be 1 to 64 printable ASCII characters")
    return request_id


class SqlIdempotency:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        key: bytes,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(key) < 16:
            raise ValueError("the idempotency key needs at least 16 bytes")
        self._sessions = sessions
        self._key = key
        self._clock = clock

    def digest(self, method: str, payload: bytes) -> str:
        return hmac.new(self._key, method.encode() + b"\0" + payload, hashlib.sha256).hexdigest()

    def run(
        self, subject: str, request_id: str, method: str, payload: bytes, call: Callable[[], bytes]
    ) -> bytes:
        check_request_id(request_id)
        digest = self.digest(method, payload)
        with unit_of_work(self._sessions) as db:
            claim = IdempotencyRow(
                subject=subject,
                request_id=request_id,
                method=method,
                payload_hash=digest,
                created_at=int(self._clock()),
            )
            try:
                with db.begin_nested():
                    db.add(claim)
            except IntegrityError:
                earlier = db.get(IdempotencyRow, (subject, request_id), populate_existing=True)
                if earlier.payload_hash != digest:
                    raise InvalidArgument(
                        "request_id was used for another request", "REQUEST_ID_REUSED"
                    ) from None
                if earlier.response is not None:
                    return earlier.response
                # A claim without an answer was left by a version that committed them apart;
                # nothing can be running it now (claims commit with their answer): take it.
                claim = earlier
            claim.response = call()
            return claim.response

"""In-memory twins of the persistence ports (:mod:`idp.persistence`): the unit of work, the
token store and the session store, for unit tests of services without a database.

Rows are kept as dicts of column values and handed out as fresh detached instances, as a
database would; the unit of work snapshots the stores it guards and restores them when a
block raises. One lock serialises whole transactions (the strictest isolation).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from idp.adapters.sql.models import AuthorizationCode, Client, Grant, SsoSession, User
from idp.domain.access import HOLDER_FIELDS, AccessGrant, Holder
from idp.domain.audit import AuditEvent

_CODE_COLUMNS = [c.key for c in AuthorizationCode.__table__.columns]
_GRANT_COLUMNS = [c.key for c in Grant.__table__.columns]
_SESSION_COLUMNS = [c.key for c in SsoSession.__table__.columns]


def _values(row, columns) -> dict:
    return {name: copy.deepcopy(getattr(row, name, None)) for name in columns}


class MemoryTokenStore:
    """``users`` looks an account up by id for :meth:`access_by_jti` (the accounts are not
    this store's); without it a token's holder is unknown."""

    def __init__(self, users: Callable[[str], User | None] | None = None) -> None:
        self._users = users or (lambda _user_id: None)
        self._codes: dict[int, dict] = {}
        self._grants: dict[str, dict] = {}
        self._denied: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._lock = threading.RLock()

    # --- snapshots for MemoryUnitOfWork ----------------------------------------------------

    def snapshot(self) -> tuple[dict, dict, dict]:
        with self._lock:
            return copy.deepcopy(self._codes), copy.deepcopy(self._grants), dict(self._denied)

    def restore(self, snapshot: tuple[dict, dict, dict]) -> None:
        with self._lock:
            self._codes, self._grants, self._denied = snapshot

    # --- codes -----------------------------------------------------------------------------

    def add_code(self, code: AuthorizationCode) -> None:
        with self._lock:
            code.id = code.id or next(self._ids)
            self._codes[code.id] = _values(code, _CODE_COLUMNS)

    def code_by_hash(self, code_hash: str) -> AuthorizationCode | None:
        with self._lock:
            for values in self._codes.values():
                if values["code_hash"] == code_hash:
                    return AuthorizationCode(**copy.deepcopy(values))
        return None

    def claim_code(self, code_hash: str, client_id: str, now: int) -> AuthorizationCode | None:
        with self._lock:
            for values in self._codes.values():
                if values["code_hash"] == code_hash:
                    if values["client_id"] != client_id or values["consumed_at"] is not None:
                        return None
                    values["consumed_at"] = now
                    return AuthorizationCode(**copy.deepcopy(values))
        return None

    # --- grants ----------------------------------------------------------------------------

    def add_grant(self, grant: Grant) -> None:
        with self._lock:
            values = _values(grant, _GRANT_COLUMNS)
            for unique in ("access_jti", "refresh_hash"):
                if values[unique] is not None and self._find(unique, values[unique]):
                    raise ValueError(f"duplicate {unique}")
            self._grants[grant.id] = values

    def _find(self, column: str, value) -> Grant | None:
        for values in self._grants.values():
            if values[column] == value:
                return Grant(**copy.deepcopy(values))
        return None

    def grant(self, grant_id: str) -> Grant | None:
        with self._lock:
            values = self._grants.get(grant_id)
            return Grant(**copy.deepcopy(values)) if values else None

    def grant_by_refresh(self, refresh_hash: str) -> Grant | None:
        with self._lock:
            return self._find("refresh_hash", refresh_hash)

    def claim_refresh(self, refresh_hash: str, client_id: str, now: int) -> Grant | None:
        with self._lock:
            values = next(
                (v for v in self._grants.values() if v["refresh_hash"] == refresh_hash), None
            )
            if (
                values is None
                or values["client_id"] != client_id
                or values["rotated_at"] is not None
                or values["revoked_at"] is not None
                or values["family_expires_at"] <= now
            ):
                return None
            values["rotated_at"] = now
            return Grant(**copy.deepcopy(values))

    def _revoke_where(self, match, now: int) -> int:
        with self._lock:
            done = 0
            for values in self._grants.values():
                if values["revoked_at"] is None and match(values):
                    values["revoked_at"] = now
                    done += 1
            return done

    def revoke_family(self, family_id: str, now: int) -> int:
        return self._revoke_where(lambda g: g["family_id"] == family_id, now)

    def revoke_grant(self, grant_id: str, now: int) -> int:
        return self._revoke_where(lambda g: g["id"] == grant_id, now)

    def revoke_code_families(self, code_id: int, now: int) -> int:
        with self._lock:
            families = {g["family_id"] for g in self._grants.values() if g["code_id"] == code_id}
            return self._revoke_where(lambda g: g["family_id"] in families, now)

    def revoke_for(
        self, user_id: str, now: int, client_id: str | None = None, sid: str | None = None
    ) -> int:
        return self._revoke_where(
            lambda g: (
                g["user_id"] == user_id
                and (not client_id or g["client_id"] == client_id)
                and (not sid or g["sid"] == sid)
            ),
            now,
        )

    def access_by_jti(self, jti: str) -> AccessGrant | None:
        with self._lock:
            found = self._find("access_jti", jti)
        if found is None or found.revoked_at is not None:
            return None
        user = self._users(found.user_id) if found.user_id else None
        return AccessGrant(
            jti=jti,
            client_id=found.client_id,
            scope=found.scope,
            audience=tuple(found.audience or ()),
            issued_at=found.created_at,
            expires_at=found.access_expires_at,
            user_id=found.user_id,
            auth_time=found.auth_time,
            grant_id=found.id,
            family_id=found.family_id,
            has_refresh=found.refresh_hash is not None,
            holder=(
                Holder(**{name: getattr(user, name) for name in HOLDER_FIELDS}) if user else None
            ),
        )

    def deny(self, jti: str, expires_at: int) -> None:
        with self._lock:
            self._denied.setdefault(jti, expires_at)

    def denied(self, jti: str) -> bool:
        with self._lock:
            return jti in self._denied


class MemorySessionStore:
    """``clients`` looks a client up by id (the client registry is not this store's)."""

    def __init__(self, clients: Callable[[str], Client | None] = lambda _: None) -> None:
        self._sessions: dict[str, dict] = {}
        self._clients_of: dict[str, list[str]] = {}
        self._client = clients
        self._lock = threading.RLock()

    def snapshot(self) -> tuple[dict, dict]:
        with self._lock:
            return copy.deepcopy(self._sessions), copy.deepcopy(self._clients_of)

    def restore(self, snapshot: tuple[dict, dict]) -> None:
        with self._lock:
            self._sessions, self._clients_of = snapshot

    def add(self, session: SsoSession) -> None:
        with self._lock:
            values = _values(session, _SESSION_COLUMNS)
            if any(v["token_hash"] == values["token_hash"] for v in self._sessions.values()):
                raise ValueError("duplicate token_hash")
            self._sessions[session.id] = values

    def get(self, session_id: str) -> SsoSession | None:
        with self._lock:
            values = self._sessions.get(session_id)
            return SsoSession(**copy.deepcopy(values)) if values else None

    def by_token_hash(self, token_hash: str) -> SsoSession | None:
        with self._lock:
            for values in self._sessions.values():
                if values["token_hash"] == token_hash:
                    return SsoSession(**copy.deepcopy(values))
        return None

    def end(self, session_id: str, now: int) -> bool:
        with self._lock:
            values = self._sessions.get(session_id)
            if values is None or values["revoked_at"] is not None:
                return False
            values["revoked_at"] = now
            return True

    def end_all(self, user_id: str, now: int, keep: str | None = None) -> int:
        with self._lock:
            ended = 0
            for values in self._sessions.values():
                live = values["user_id"] == user_id and values["revoked_at"] is None
                if live and values["id"] != keep:
                    values["revoked_at"] = now
                    ended += 1
            return ended

    def live_for(self, user_id: str, now: int) -> list[SsoSession]:
        with self._lock:
            rows = [
                SsoSession(**copy.deepcopy(v))
                for v in self._sessions.values()
                if v["user_id"] == user_id and v["revoked_at"] is None and v["expires_at"] > now
            ]
        return sorted(rows, key=lambda r: r.created_at, reverse=True)

    def note_client(self, session_id: str, client_id: str) -> None:
        with self._lock:
            clients = self._clients_of.setdefault(session_id, [])
            if client_id not in clients:
                clients.append(client_id)

    def clients_of(self, session_id: str) -> list[Client]:
        with self._lock:
            ids = list(self._clients_of.get(session_id, ()))
        return [c for c in map(self._client, ids) if c is not None]


class MemoryUnitOfWork:
    """Transactions over memory stores that can ``snapshot()`` and ``restore()``."""

    def __init__(self, *stores) -> None:
        self._stores = stores
        self._lock = threading.RLock()
        self._local = threading.local()

    @property
    def active(self) -> bool:
        return getattr(self._local, "depth", 0) > 0

    @contextmanager
    def transaction(self) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        self._local.depth = depth + 1
        try:
            if depth:
                yield
                return
            with self._lock:
                snapshots = [store.snapshot() for store in self._stores]
                try:
                    yield
                except BaseException:
                    for store, snapshot in zip(self._stores, snapshots, strict=True):
                        store.restore(snapshot)
                    raise
        finally:
            self._local.depth = depth

    def end_read(self) -> None:
        """Nothing to release in memory."""


class MemoryAuditLog:
    """The twin of :class:`idp.persistence.AuditLog`; ``events`` in the order added."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []
        self._ids = itertools.count(1)
        self._lock = threading.RLock()

    def snapshot(self) -> list[AuditEvent]:
        with self._lock:
            return list(self.events)

    def restore(self, snapshot: list[AuditEvent]) -> None:
        with self._lock:
            self.events = snapshot

    def add(self, event: AuditEvent) -> None:
        with self._lock:
            self.events.append(dataclasses.replace(event, id=next(self._ids)))

    def recent(self, subject: str, limit: int) -> list[AuditEvent]:
        with self._lock:
            mine = [e for e in self.events if e.subject == subject]
        return sorted(mine, key=lambda e: (e.at, e.id), reverse=True)[:limit]

    def between(
        self,
        since: int,
        until: int | None = None,
        subject: str | None = None,
        after: int = 0,
        limit: int = 1000,
    ) -> list[AuditEvent]:
        with self._lock:
            return [
                e
                for e in self.events
                if e.at >= since
                and e.id > after
                and (until is None or e.at < until)
                and (subject is None or e.subject == subject)
            ][:limit]

    def purge_before(self, cutoff: int, batch: int) -> int:
        with self._lock:
            old = [e.id for e in self.events if e.at < cutoff][:batch]
            self.events = [e for e in self.events if e.id not in old]
            return len(old)

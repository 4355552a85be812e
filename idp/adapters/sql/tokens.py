"""The SQL adapter of :class:`idp.persistence.TokenStore`: every conditional step is one
statement, so parallel requests on one code or refresh token cannot both win.

The statements of the token endpoint's hot path (a code's claim, a refresh token's claim, a
grant's INSERT) are Core statements built once, with bound parameters: SQLAlchemy compiles
each once per dialect and finds it again without generating a cache key per request, and the
rows they return are made into detached records without the ORM's flush, identity map or
bulk-update bookkeeping.
"""

from __future__ import annotations

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session, scoped_session

from idp.adapters.sql.models import AuthorizationCode, Grant

_CODES = AuthorizationCode.__table__
_GRANTS = Grant.__table__
_GRANT_COLUMNS = [c.key for c in _GRANTS.columns]

# A code is claimed only by the client it was issued to, and only once.
_CLAIM_CODE = (
    update(_CODES)
    .where(
        _CODES.c.code_hash == bindparam("hash"),
        _CODES.c.client_id == bindparam("client"),
        _CODES.c.consumed_at.is_(None),
    )
    .values(consumed_at=bindparam("now"))
    .returning(*_CODES.columns)
)
# A refresh token is claimed only by its client, while live: not rotated, not revoked, its
# family not expired.
_CLAIM_REFRESH = (
    update(_GRANTS)
    .where(
        _GRANTS.c.refresh_hash == bindparam("hash"),
        _GRANTS.c.client_id == bindparam("client"),
        _GRANTS.c.rotated_at.is_(None),
        _GRANTS.c.revoked_at.is_(None),
        _GRANTS.c.family_expires_at > bindparam("now"),
    )
    .values(rotated_at=bindparam("now"))
    .returning(*_GRANTS.columns)
)
_INSERT_GRANT = insert(_GRANTS)


class SqlTokenStore:
    def __init__(self, session: Session | scoped_session) -> None:
        self._db = session

    # --- codes ---------------------------------------------------------------------------

    def add_code(self, code: AuthorizationCode) -> None:
        self._db.add(code)

    def code_by_hash(self, code_hash: str) -> AuthorizationCode | None:
        return self._db.scalar(
            select(AuthorizationCode).where(AuthorizationCode.code_hash == code_hash)
        )

    def claim_code(self, code_hash: str, client_id: str, now: int) -> AuthorizationCode | None:
        row = self._db.execute(
            _CLAIM_CODE, {"hash": code_hash, "client": client_id, "now": now}
        ).first()
        return AuthorizationCode(**row._mapping) if row is not None else None

    # --- grants --------------------------------------------------------------------------

    def add_grant(self, grant: Grant) -> None:
        # One INSERT now, not an ORM flush at commit; the instance stays detached (as the
        # memory twin's are), which is all its callers read. Session.execute autoflushes
        # before Core statements too (SQLAlchemy 2.0, #9809): a user or client the unit of
        # work made as objects is written first, as the grant's foreign keys need.
        self._db.execute(_INSERT_GRANT, {k: getattr(grant, k) for k in _GRANT_COLUMNS})

    def grant(self, grant_id: str) -> Grant | None:
        return self._db.get(Grant, grant_id)

    def grant_by_refresh(self, refresh_hash: str) -> Grant | None:
        return self._db.scalar(select(Grant).where(Grant.refresh_hash == refresh_hash))

    def grant_by_jti(self, jti: str) -> Grant | None:
        return self._db.scalar(select(Grant).where(Grant.access_jti == jti))

    def claim_refresh(self, refresh_hash: str, client_id: str, now: int) -> Grant | None:
        # RETURNING (PostgreSQL; SQLite ≥ 3.35) hands back the row as claimed, under its lock.
        row = self._db.execute(
            _CLAIM_REFRESH, {"hash": refresh_hash, "client": client_id, "now": now}
        ).first()
        return Grant(**row._mapping) if row is not None else None

    def revoke_family(self, family_id: str, now: int) -> int:
        return self._db.execute(
            update(Grant)
            .where(Grant.family_id == family_id, Grant.revoked_at.is_(None))
            .values(revoked_at=now)
        ).rowcount

    def revoke_grant(self, grant_id: str, now: int) -> int:
        return self._db.execute(
            update(Grant)
            .where(Grant.id == grant_id, Grant.revoked_at.is_(None))
            .values(revoked_at=now)
        ).rowcount

    def revoke_code_families(self, code_id: int, now: int) -> int:
        families = select(Grant.family_id).where(Grant.code_id == code_id).scalar_subquery()
        return self._db.execute(
            update(Grant)
            .where(Grant.family_id.in_(families), Grant.revoked_at.is_(None))
            .values(revoked_at=now)
        ).rowcount

    def revoke_for(
        self, user_id: str, now: int, client_id: str | None = None, sid: str | None = None
    ) -> int:
        query = update(Grant).where(Grant.user_id == user_id, Grant.revoked_at.is_(None))
        if client_id:
            query = query.where(Grant.client_id == client_id)
        if sid:
            query = query.where(Grant.sid == sid)
        return self._db.execute(query.values(revoked_at=now)).rowcount

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
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, scoped_session

from idp.adapters.sql.models import AuthorizationCode, Grant, RevokedToken, User
from idp.domain.access import HOLDER_FIELDS, AccessGrant, Holder

_grants, _users = Grant.__table__, User.__table__
# A person's live access token and its account in one indexed read (access_jti is unique),
# as plain rows: no ORM objects are built for a userinfo or introspection request.
_ACCESS = (
    select(
        _grants.c.id,
        _grants.c.family_id,
        _grants.c.client_id,
        _grants.c.user_id,
        _grants.c.scope,
        _grants.c.audience,
        _grants.c.created_at,
        _grants.c.access_expires_at,
        _grants.c.auth_time,
        _grants.c.refresh_hash.is_not(None).label("has_refresh"),
        *(_users.c[name].label(f"holder_{name}") for name in HOLDER_FIELDS),
    )
    .select_from(_grants.outerjoin(_users, _users.c.id == _grants.c.user_id))
    .where(_grants.c.revoked_at.is_(None), _grants.c.access_jti == bindparam("jti"))
)
_DENIED = select(RevokedToken.__table__.c.jti).where(
    RevokedToken.__table__.c.jti == bindparam("jti")
)

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

    # --- access tokens, read for userinfo and introspection ---------------------------------

    def access_by_jti(self, jti: str) -> AccessGrant | None:
        # Built once with a bound parameter: no clause construction or cache key per request
        # (they were a quarter of userinfo's Python time in a py-spy profile).
        row = self._db.execute(_ACCESS, {"jti": jti}).first()
        if row is None:
            return None
        fields = row._mapping
        holder = None
        if fields["holder_id"] is not None:
            holder = Holder(**{name: fields[f"holder_{name}"] for name in HOLDER_FIELDS})
        return AccessGrant(
            jti=jti,
            client_id=row.client_id,
            scope=row.scope,
            audience=tuple(row.audience or ()),
            issued_at=row.created_at,
            expires_at=row.access_expires_at,
            user_id=row.user_id,
            auth_time=row.auth_time,
            grant_id=row.id,
            family_id=row.family_id,
            has_refresh=bool(row.has_refresh),
            holder=holder,
        )

    # --- the deny list of revoked client_credentials tokens --------------------------------

    def deny(self, jti: str, expires_at: int) -> None:
        """Put ``jti`` on the deny list; already there (a second revocation) is no error."""
        dialect = postgresql if self._db.get_bind().dialect.name == "postgresql" else sqlite
        self._db.execute(
            dialect.insert(RevokedToken)
            .values(jti=jti, expires_at=expires_at)
            .on_conflict_do_nothing(index_elements=["jti"])
        )

    def denied(self, jti: str) -> bool:
        return self._db.scalar(_DENIED, {"jti": jti}) is not None

"""``idp purge`` (issue 11): expired records deleted in batches, fresh ones kept, and two
purges at once (two replicas' cron jobs) neither fail nor delete anything twice. On SQLite
and on PostgreSQL."""

from __future__ import annotations

import threading
import uuid

from sqlalchemy import func, select

from idp.adapters.sql.models import (
    AuditEntry,
    AuthorizationCode,
    Grant,
    OutboxEntry,
    RevokedToken,
    SessionClient,
    SsoSession,
    Verification,
)
from idp.extensions import db
from tests.support import make_client, make_user

DAY = 24 * 3600


def count(live, model) -> int:
    with live.ctx():
        try:
            return db.session.scalar(select(func.count()).select_from(model))
        finally:
            db.session.remove()


def verification(now: int, expires_at: int) -> Verification:
    return Verification(
        id=str(uuid.uuid4()),
        purpose="register",
        state="code_sent",
        contact_kind="phone",
        contact_value="+79990001122",
        payload={},
        created_at=now - 3600,
        expires_at=expires_at,
    )


def code(client_id, user_id, now, expires_at) -> AuthorizationCode:
    return AuthorizationCode(
        code_hash=uuid.uuid4().hex * 2,
        client_id=client_id,
        user_id=user_id,
        redirect_uri="https://rp.example.com/cb",
        scope="openid",
        code_challenge="x" * 43,
        code_challenge_method="S256",
        auth_time=now,
        created_at=now - 60,
        expires_at=expires_at,
    )


def session(user_id, now, expires_at, revoked_at=None) -> SsoSession:
    return SsoSession(
        id=str(uuid.uuid4()),
        token_hash=uuid.uuid4().hex * 2,
        user_id=user_id,
        auth_time=now,
        created_at=now - 60,
        last_seen_at=now,
        expires_at=expires_at,
        revoked_at=revoked_at,
    )


def grant(client_id, user_id, now, access_expires_at, family_expires_at, refresh=True) -> Grant:
    return Grant(
        id=str(uuid.uuid4()),
        family_id=str(uuid.uuid4()),
        client_id=client_id,
        user_id=user_id,
        scope="openid",
        access_jti=uuid.uuid4().hex,
        refresh_hash=uuid.uuid4().hex * 2 if refresh else None,
        access_expires_at=access_expires_at,
        family_expires_at=family_expires_at,
        created_at=now - 60,
    )


def outbox(now, state, created_at) -> OutboxEntry:
    return OutboxEntry(
        message_id=str(uuid.uuid4()),
        kind="sms",
        purpose="code",
        payload={},
        state=state,
        due_at_ms=created_at * 1000,
        created_at=created_at,
        expires_at=created_at + 600 if state != "pending" else now + 600,
    )


def audit(at) -> AuditEntry:
    return AuditEntry(at=at, event_type="signin.failure", details={})


def test_purge_deletes_what_is_due_in_batches_and_keeps_the_rest(make_live):
    live = make_live(outbox_worker=False)  # the pending row stays pending
    sub, _ = make_user(live)
    client = make_client(live)
    now = int(live.clock())
    cid = client.client_id
    ended = session(sub, now, now + DAY, revoked_at=now - 2 * DAY)
    with live.ctx():
        db.session.add_all(
            [
                *(verification(now, now - 10) for _ in range(3)),
                verification(now, now + 600),
                *(code(cid, sub, now, now - 1) for _ in range(3)),
                code(cid, sub, now, now + 60),
                session(sub, now, now - 1),
                ended,
                session(sub, now, now + DAY, revoked_at=now - 60),  # ended now: kept a day
                session(sub, now, now + DAY),
                grant(cid, sub, now, now - 1, now - 1),
                grant(cid, sub, now, now - 1, now + DAY, refresh=False),  # nothing left of it
                grant(cid, sub, now, now - 1, now + DAY),  # its refresh family lives on
                grant(cid, sub, now, now + 600, now + DAY),
                outbox(now, "sent", now - 8 * DAY),
                outbox(now, "dead", now - 8 * DAY),
                outbox(now, "sent", now - DAY),
                outbox(now, "pending", now),
                *(audit(now - 401 * DAY) for _ in range(5)),
                audit(now - 399 * DAY),
            ]
        )
        db.session.flush()
        db.session.add(SessionClient(session_id=ended.id, client_id=cid))
        db.session.commit()
        deleted = live.services.housekeeping.purge(batch=2)
        db.session.remove()
    assert deleted == {
        "verifications": 3,
        "codes": 3,
        "sessions": 2,
        "grants": 2,
        "revoked_tokens": 0,
        "outbox": 2,
        "dev_mailbox": 0,
        "audit": 5,
    }
    assert count(live, Verification) == 1
    assert count(live, AuthorizationCode) == 1
    assert count(live, SsoSession) == 2
    assert count(live, SessionClient) == 0
    assert count(live, Grant) == 2
    assert count(live, OutboxEntry) == 2
    # The user's registration, the client's creation and the 399-day-old event stay.
    assert count(live, AuditEntry) == 3
    with live.ctx():
        assert live.services.housekeeping.purge(batch=2) == dict.fromkeys(deleted, 0)


def test_purge_removes_expired_deny_list_entries_only(live):
    """Revoked client_credentials tokens: an entry goes a minute after its token expired
    (DENIED_TOKEN_GRACE, beyond the verifier's 5 s leeway), never while the token verifies."""
    now = int(live.clock())
    with live.ctx():
        db.session.add_all(
            [
                *(RevokedToken(jti=f"svc.gone{i}", expires_at=now - 61 - i) for i in range(3)),
                RevokedToken(jti="svc.just-expired", expires_at=now - 3),  # still verifies
                RevokedToken(jti="svc.live", expires_at=now + 300),
            ]
        )
        db.session.commit()
        assert live.services.housekeeping.purge(batch=2)["revoked_tokens"] == 3
        left = set(db.session.scalars(select(RevokedToken.jti)))
        db.session.remove()
    assert left == {"svc.just-expired", "svc.live"}


def test_two_purges_at_once_share_the_work(live):
    now = int(live.clock())
    with live.ctx():
        db.session.add_all([audit(now - 500 * DAY) for _ in range(120)])
        db.session.commit()
        db.session.remove()
    results, errors = [], []

    def purge() -> None:
        try:
            with live.ctx():
                results.append(live.services.housekeeping.purge(batch=7)["audit"])
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=purge) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert sum(results) == 120
    assert count(live, AuditEntry) == 0


def test_cron_key_rotation_rotates_once_when_due_even_from_two_replicas(live):
    def es256_keys():
        with live.ctx():
            try:
                keys = [k for k in live.services.keys.list_keys() if k.alg == "ES256"]
                return {k.kid: (k.created_at, k.retired_at, k.publish_until) for k in keys}
            finally:
                db.session.remove()

    before = es256_keys()
    with live.ctx():
        assert live.services.keys.rotate_if_older("ES256", 30 * DAY) is None  # young
        db.session.remove()
    live.clock.advance(31 * DAY)
    kids, errors = [], []

    def rotate() -> None:
        try:
            with live.ctx():
                kids.append(live.services.keys.rotate_if_older("ES256", 30 * DAY, operator="cron"))
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=rotate) for _ in range(2)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors, errors
        assert sorted(kids, key=str) == sorted([None, *set(es256_keys()) - set(before)], key=str)
    finally:
        restore_keys(live, before)


def restore_keys(live, before: dict) -> None:
    """The signing keys are shared by the run's tests: put them back as they were."""
    with live.ctx():
        for row in live.services.keys.list_keys():
            if row.alg != "ES256":
                continue
            if row.kid not in before:
                db.session.delete(row)
            else:
                _, row.retired_at, row.publish_until = before[row.kid]
        db.session.commit()
        live.services.keys.invalidate()
        db.session.remove()

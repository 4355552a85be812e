"""Refresh rotation over real HTTP (RFC 9700 §4.14.2), on SQLite and on PostgreSQL: one
unit of work per token request, parallel refreshes of one token, a crash after rotation."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import delete, select

from idp.adapters.sql.models import Grant, SigningKey
from tests.idp.uow_support import counting, issue_refresh, rows
from tests.support import make_client, make_user


def test_refresh_commits_once_in_three_statements(make_live):
    """Before the unit of work the same refresh took 10 statements and 2 COMMITs (the old
    token's rotation committed before its successor existed); the client is read from the
    process's cache since issue 10 (issue_refresh below has loaded it), and the token is
    claimed by its hash without being read first."""
    live = make_live(outbox_worker=False)  # its polling would be counted too
    client = make_client(live)
    user_id, _ = make_user(live)
    token = issue_refresh(live.app, user_id, client.client_id)
    with counting(live.app) as counter:
        response = requests.post(
            f"{live.url}/token",
            data={"grant_type": "refresh_token", "refresh_token": token},
            auth=(client.client_id, client.secret),
            timeout=10,
        )
    assert response.status_code == 200, response.text
    assert counter.commits == 1, counter.statements
    # UPDATE … WHERE refresh_hash … RETURNING (rotation), user, INSERT (successor)
    assert counter.statements == ["UPDATE", "SELECT", "INSERT"]


def test_parallel_refreshes_over_http_succeed_exactly_once(live):
    client = make_client(live)
    user_id, _ = make_user(live)
    token = issue_refresh(live.app, user_id, client.client_id)

    def attempt(_):
        return requests.post(
            f"{live.url}/token",
            data={"grant_type": "refresh_token", "refresh_token": token},
            auth=(client.client_id, client.secret),
            timeout=30,
        )

    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(pool.map(attempt, range(10)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * 9, [r.text for r in responses]


def test_a_crash_after_rotation_over_http_rolls_the_rotation_back(live):
    """The ID token is signed after the refresh token was rotated and its successor stored;
    with no RS256 key to sign it, the request fails (503 server_error, never a 500), and the
    whole token request rolls back:
    the old refresh token still works and its retry is not taken for reuse."""
    from idp.extensions import db

    client = make_client(live, id_token_alg="RS256")
    user_id, _ = make_user(live)
    token = issue_refresh(live.app, user_id, client.client_id)

    def refresh():
        return requests.post(
            f"{live.url}/token",
            data={"grant_type": "refresh_token", "refresh_token": token},
            auth=(client.client_id, client.secret),
            timeout=10,
        )

    keys = live.services.keys
    with live.ctx():
        db.session.execute(delete(SigningKey).where(SigningKey.alg == "RS256"))
        db.session.commit()
        keys.invalidate()
    try:
        failed = refresh()
        assert failed.status_code == 503 and failed.json()["error"] == "server_error"
        assert all(r.rotated_at is None for r in rows(live.app, select(Grant.rotated_at)))
    finally:
        with live.ctx():
            keys.ensure_keys()
    retried = refresh()
    assert retried.status_code == 200, retried.text
    assert "id_token" in retried.json()
    assert [r.revoked_at for r in rows(live.app, select(Grant.revoked_at))] == [None, None]

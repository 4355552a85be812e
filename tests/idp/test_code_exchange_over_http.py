"""The authorization code exchange over real HTTP, on SQLite and on PostgreSQL: one unit of
work in one statement per step — the code claimed by its hash without being read first, its
replay told apart only when that claim fails."""

from __future__ import annotations

import requests
from sqlalchemy import func, select

from idp.adapters.sql.models import Grant, SessionClient
from tests.idp.uow_support import counting, rows
from tests.support import (
    PASSWORD,
    authorize_url,
    callback_params,
    make_client,
    make_user,
    pkce_pair,
    sign_in_and_authorize,
)


def test_code_exchange_commits_once_in_four_statements_and_its_replay_in_three(make_live):
    """Before: SELECT code, UPDATE code, SELECT user, SELECT session_clients, then the
    grant's INSERT at the ORM flush. The pair (session, client) is noted with one INSERT that
    leaves a pair already there as it is."""
    live = make_live(outbox_worker=False)  # its polling would be counted too
    client = make_client(live)
    _, login = make_user(live)
    http = requests.Session()

    def code() -> tuple[str, str]:
        verifier, challenge = pkce_pair()
        url = authorize_url(live, client, challenge)
        redirected = sign_in_and_authorize(http, live, url, login, PASSWORD)
        return callback_params(redirected)["code"], verifier

    def redeem(code: str, verifier: str) -> requests.Response:
        return requests.post(
            f"{live.url}/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": client.redirect_uri,
            },
            auth=(client.client_id, client.secret),
            timeout=10,
        )

    first = code()
    assert redeem(*first).status_code == 200
    second = code()  # the same SSO session: its pair with the client is noted already
    with counting(live.app) as counter:
        response = redeem(*second)
    assert response.status_code == 200, response.text
    assert counter.commits == 1, counter.statements
    # UPDATE code … RETURNING, the user, INSERT grant, INSERT … ON CONFLICT DO NOTHING (pair)
    assert counter.statements == ["UPDATE", "SELECT", "INSERT", "INSERT"]
    assert rows(live.app, select(func.count()).select_from(SessionClient)) == [(1,)]

    with counting(live.app) as counter:
        replayed = redeem(*second)
    assert replayed.status_code == 400 and replayed.json()["error"] == "invalid_grant"
    # The claim matches nothing; the lookup finds the code spent; its family is revoked.
    assert counter.statements == ["UPDATE", "SELECT", "UPDATE"]
    revoked = [r.revoked_at is not None for r in rows(live.app, select(Grant.revoked_at))]
    assert sorted(revoked) == [False, True]

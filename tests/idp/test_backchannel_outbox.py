"""Back-channel logout (OIDC Back-Channel Logout 1.0) through the outbox: the logout request
answers without waiting on the relying party; the worker POSTs, retries a 500, and stops."""

from __future__ import annotations

from joserfc import jwt

from idp.adapters.logout_http import HttpLogoutNotifier
from tests.e2e.test_code_flow import run_code_flow
from tests.fakes.relying_party import RelyingParty
from tests.support import make_client, make_user, wait_for


def logout(live, client, login, rp_url):
    meta, jwks, _, token, _, browser = run_code_flow(live, client, login)
    response = browser.get(
        meta["end_session_endpoint"],
        allow_redirects=False,
        params={"id_token_hint": token["id_token"]},
    )
    return response, jwks


def test_logout_is_delivered_by_the_worker_and_a_500_is_retried(make_live):
    with RelyingParty(script=(500,)) as rp:
        live = make_live(notifier=HttpLogoutNotifier(timeout=2))
        client = make_client(live, backchannel_logout_uri=rp.url)
        sub, login = make_user(live)
        rp.block()
        response, jwks = logout(live, client, login, rp.url)
        assert response.status_code == 303  # answered while the RP holds the worker's POST
        assert rp.received == []
        wait_for(lambda: rp.held == 1, what="the worker's POST held by the RP")
        rp.unblock()
        wait_for(lambda: len(rp.received) == 2, what="the retry after the 500")
        live.drain()
        [row] = live.outbox_rows(kind="logout")
        assert (row.state, row.attempts, row.payload["uri"]) == ("sent", 2, rp.url)
        claims = [jwt.decode(t, jwks, algorithms=["ES256"]) for t in rp.received]
        assert {c.header["typ"] for c in claims} == {"logout+jwt"}
        assert {(c.claims["sub"], c.claims["aud"]) for c in claims} == {(sub, client.client_id)}
        assert claims[0].claims["sid"] == claims[1].claims["sid"] == row.payload["sid"]
        assert claims[0].claims["jti"] != claims[1].claims["jti"]  # each POST a fresh token
        assert "logout_token" not in row.payload  # signed when sent, never stored


def test_an_rp_that_keeps_failing_is_given_up_on(make_live):
    with RelyingParty(script=(500,) * 100) as rp:
        live = make_live(notifier=HttpLogoutNotifier(timeout=2))
        client = make_client(live, backchannel_logout_uri=rp.url)
        _, login = make_user(live)
        response, _ = logout(live, client, login, rp.url)
        assert response.status_code == 303
        live.drain()
        [row] = live.outbox_rows(kind="logout")
        assert (row.state, row.attempts) == ("dead", live.worker_policy.max_attempts)
        assert len(rp.received) == live.worker_policy.max_attempts  # capped, then silence

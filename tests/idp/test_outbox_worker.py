"""The outbox worker on both storage profiles: replicas claiming the same rows, expiry,
permanent refusals, and the retry schedule."""

from __future__ import annotations

import threading

import pytest

from idp.adapters.outbox import RecordingEmailSender, RecordingSmsSender
from idp.adapters.sql.outbox import OutboxQueue
from idp.adapters.wake import LocalWaker
from idp.ports import MessageRejected
from idp.services.outbox_worker import OutboxWorker, RetryPolicy
from tests.conftest import TEST_RETRY


class RejectingSmsSender(RecordingSmsSender):
    def send(self, phone, text, message_id=None):
        raise MessageRejected("the gateway refused this number")


def worker(live, sms=None, email=None):
    from idp.extensions import db

    services = live.services
    return OutboxWorker(
        OutboxQueue(db.session, live.clock),
        sms or RecordingSmsSender(),
        email or RecordingEmailSender(),
        live.notifier,
        services.logout.logout_token,
        services.channels,
        LocalWaker(),
        policy=TEST_RETRY,
        clock=live.clock,
    )


def queue(live, n, ttl=600):
    from idp.extensions import db

    with live.ctx():
        ids = [
            live.services.outbox.add(
                "sms", "code_register", {"to": "+79990001122", "text": f"{i}"}, ttl=ttl
            )
            for i in range(n)
        ]
        db.session.commit()
    return ids


@pytest.fixture
def quiet(make_live):
    """A live app without the worker beside it: the test drives workers itself."""
    return make_live(outbox_worker=False)


def test_two_replicas_deliver_every_row_exactly_once(quiet):
    ids = queue(quiet, 40)
    senders = [RecordingSmsSender(), RecordingSmsSender()]
    barrier = threading.Barrier(2)

    def replica(sender):
        with quiet.ctx():
            w = worker(quiet, sms=sender)
            barrier.wait()
            while w.run_once("messages"):
                pass

    threads = [threading.Thread(target=replica, args=(s,)) for s in senders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    delivered = [m.message_id for s in senders for m in s.sent]
    assert sorted(delivered) == sorted(ids)  # each once: none lost, none twice
    assert {r.state for r in quiet.outbox_rows()} == {"sent"}


def test_a_row_past_its_expiry_is_dead_not_sent(quiet):
    queue(quiet, 1, ttl=600)
    quiet.clock.advance(601)
    sms = RecordingSmsSender()
    with quiet.ctx():
        assert worker(quiet, sms=sms).run_once() == 1
    assert sms.sent == []
    [row] = quiet.outbox_rows()
    assert row.state == "dead" and "expired" in row.last_error


def test_a_refused_message_is_dead_at_once_and_the_channel_stays_up(quiet):
    queue(quiet, 1)
    with quiet.ctx():
        assert worker(quiet, sms=RejectingSmsSender()).run_once() == 1
        assert not quiet.services.channels.is_down("sms")
    [row] = quiet.outbox_rows()
    assert (row.state, row.attempts) == ("dead", 1) and "refused" in row.last_error


def test_a_sent_row_is_never_claimed_again(quiet):
    queue(quiet, 1)
    sms = RecordingSmsSender()
    with quiet.ctx():
        w = worker(quiet, sms=sms)
        assert w.run_once() == 1
        quiet.clock.advance(3600)  # long after any lease
        assert w.run_once() == 0
    assert len(sms.sent) == 1


def test_the_retry_delay_doubles_with_jitter_up_to_a_cap():
    policy = RetryPolicy(backoff=2, max_backoff=60)
    assert [policy.delay(n, rng=lambda: 1.0) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]
    assert [policy.delay(n, rng=lambda: 0.0) for n in (1, 2, 3)] == [1, 2, 4]

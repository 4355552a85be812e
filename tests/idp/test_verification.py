"""Confirmation codes and links (checklist items 21-25), on SQLite and on PostgreSQL."""

from __future__ import annotations

import re
import threading

import pytest
from sqlalchemy import select

from idp.adapters.sql.models import OutboxMessage, Verification
from idp.domain.errors import Throttled
from idp.services.registration import IllegalTransition
from idp.services.verification import SecretRejected


def start_phone(live, phone="+79995550001"):
    with live.ctx():
        started = live.services.registration.start(
            "Орлова", "Вера", None, "Пермский край", phone, True, "198.51.100.7"
        )
        return started.flow.id


def sent_codes(live, phone):
    from idp.extensions import db

    live.drain()
    with live.ctx():
        rows = db.session.scalars(
            select(OutboxMessage.body)
            .where(OutboxMessage.recipient == phone)
            .order_by(OutboxMessage.id)
        ).all()
    return [re.search(r"\b(\d{6})\b", body).group(1) for body in rows]


def confirm(live, flow_id, code):
    with live.ctx():
        return live.services.registration.confirm_code(flow_id, code)


def state(live, flow_id):
    from idp.extensions import db

    with live.ctx():
        return db.session.get(Verification, flow_id).state


def test_sixteen_parallel_submissions_of_one_code_succeed_once(live):
    """Item 23."""
    flow = start_phone(live)
    code = sent_codes(live, "+79995550001")[-1]
    results, barrier = [], threading.Barrier(16)

    def submit():
        barrier.wait()
        try:
            confirm(live, flow, code)
            results.append("ok")
        except SecretRejected as exc:
            results.append(exc.reason)
        except IllegalTransition:
            results.append("used")

    threads = [threading.Thread(target=submit) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 16 and results.count("ok") == 1, results
    assert set(results) - {"ok"} <= {"used"}
    assert state(live, flow) == "confirmed"


def test_a_code_dies_after_five_wrong_tries(live):
    """Item 22: brute force stops; the right code is refused afterwards."""
    flow = start_phone(live)
    code = sent_codes(live, "+79995550001")[-1]
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    left = []
    for _ in range(5):
        with pytest.raises(SecretRejected) as info:
            confirm(live, flow, wrong)
        left.append(info.value.tries_left)
    assert left == [4, 3, 2, 1, 0]
    with pytest.raises(SecretRejected) as info:
        confirm(live, flow, code)
    assert info.value.reason == "exhausted"
    assert state(live, flow) == "code_sent"


def test_resend_cooldown_grows_and_a_new_code_replaces_the_old(live):
    """Item 21: too early → Throttled; the old code dies; failures are not reset."""
    flow = start_phone(live)
    first = sent_codes(live, "+79995550001")[-1]
    with live.ctx(), pytest.raises(Throttled) as info:
        live.services.registration.resend(flow, "198.51.100.7")
    assert 0 < info.value.retry_after <= 300
    with pytest.raises(SecretRejected):
        confirm(live, flow, f"{(int(first) + 1) % 1_000_000:06d}")
    live.clock.advance(301)
    with live.ctx():
        live.services.registration.resend(flow, "198.51.100.7")
        row = live.services.registration.get(flow)
        assert row.attempts == 1  # not reset by the resend
        # doubled (the clock may tick a second between the send and this read)
        assert 598 <= live.services.verifier.cooldown(row) <= 600
    second = sent_codes(live, "+79995550001")[-1]
    if second != first:
        with pytest.raises(SecretRejected):
            confirm(live, flow, first)
    confirm(live, flow, second)


def test_a_code_expires_after_ten_minutes(live):
    """Item 24: 10 min + 1 s → refused, nothing changed."""
    flow = start_phone(live)
    code = sent_codes(live, "+79995550001")[-1]
    live.clock.advance(601)
    with pytest.raises(SecretRejected) as info:
        confirm(live, flow, code)
    assert info.value.reason == "expired"
    assert state(live, flow) == "code_sent"


def test_links_expire_after_a_day_and_tampered_links_fail(live):
    """Items 24 and 25."""
    from idp.extensions import db

    with live.ctx():
        live.services.registration.start(
            "Орлова", "Вера", None, "Пермский край", "vera@example.ru", True, "198.51.100.7"
        )
    live.drain()
    with live.ctx():
        body = db.session.scalar(
            select(OutboxMessage.body).where(OutboxMessage.recipient == "vera@example.ru")
        )
    token = re.search(r"/confirm/([\w\-]+)", body).group(1)
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    with live.ctx(), pytest.raises(SecretRejected):
        live.services.registration.confirm_link(tampered)
    live.clock.advance(24 * 3600 + 1)
    with live.ctx(), pytest.raises(SecretRejected) as info:
        live.services.registration.confirm_link(token)
    assert info.value.reason == "expired"

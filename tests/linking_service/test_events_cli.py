"""`idp linking-events` as a real command."""

from __future__ import annotations

import json
import subprocess
import sys

import requests

from idp.adapters.linking_grpc import GrpcLinkingClient
from tests.conftest import base_env
from tests.linking_service.test_idp_auto_attach import mint
from tests.processes import free_port, wait_until


def run(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "idp.cli", "linking-events", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_needs_a_target_and_reports_an_unreachable_service(databases, tmp_path):
    env = {**base_env(databases["embedded"], tmp_path), "PATH": "/usr/bin:/bin"}
    missing = run(env, "--once")
    assert missing.returncode != 0 and "IDP_LINKING_TARGET" in missing.stderr
    down = run({**env, "IDP_LINKING_TARGET": "127.0.0.1:1"}, "--once", "--wait", "0.5")
    assert down.returncode != 0 and "linking service" in down.stderr
    assert "Traceback" not in down.stderr


def test_serves_its_metrics_on_idp_metrics_port(databases, tmp_path):
    """deploy/k8s has Prometheus scrape the linking-events pod like ``idp worker``'s: the
    process serves ``/metrics`` on IDP_METRICS_PORT, even while the linking service is down."""
    port = free_port()
    env = {
        **base_env(databases["embedded"], tmp_path),
        "PATH": "/usr/bin:/bin",
        "IDP_LINKING_TARGET": "127.0.0.1:1",
        "IDP_METRICS_PORT": str(port),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "idp.cli", "linking-events", "--wait", "0.5"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    def metrics():
        assert proc.poll() is None, proc.stderr.read()
        try:
            return requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
        except requests.ConnectionError:
            return None

    try:
        response = wait_until(metrics, 60, "idp linking-events' /metrics")
        assert response.status_code == 200
        assert "process_" in response.text or "python_" in response.text
    finally:
        proc.terminate()
        proc.wait(30)
        proc.stderr.close()


# --- against the real linking service -------------------------------------------------------


def move_accounts(linking, holders, taker_token, first=700):
    """Each holder (sub, token) attaches one account, then the taker re-attaches it: one
    ``reattached`` event per holder, in order. Returns the account numbers."""
    from tests.linking_service.test_attachment import attach_by_number

    numbers = []
    for i, (_, token) in enumerate(holders):
        number, login = f"590000000{first + i:03d}", f"perm-inet-{first + i}"
        linking.add_account(number, internet=(login, "inet-pass"))
        attach_by_number(linking, token, number=number, login=login)
        numbers.append(number)
    for number, i in zip(numbers, range(len(numbers)), strict=True):
        attach_by_number(linking, taker_token, number=number, login=f"perm-inet-{first + i}")
    return numbers


def notices(live, **where):
    return [r for r in live.outbox_rows(purpose="account_moved", **where)]


def cli_env(linking, profile, databases, tmp_path):
    return {
        **base_env(databases[profile], tmp_path),
        "PATH": "/usr/bin:/bin",
        "IDP_ISSUER": linking.idp.url,
        "IDP_LINKING_TARGET": linking.target,
    }


def test_eleven_notices_to_one_holder_never_wedge_the_stream(linking, profile, databases, tmp_path):
    """The 11th notice to one person in a day is dropped with a log line; the consumer goes
    on to the end of the stream (it used to raise out of the loop and restart at the same
    event forever)."""
    holder = linking.user_token()
    _, taker = linking.user_token()
    numbers = move_accounts(linking, [holder] * 11, taker)
    done = run(cli_env(linking, profile, databases, tmp_path), "--once", "--wait", "1")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["events"] == 22 and report["notices"] == 10
    assert "dropped: 11 today (cap 10)" in done.stderr and "Traceback" not in done.stderr
    with linking.idp.ctx():
        phone = linking.idp.services.users.get(holder[0]).phone
    sent = notices(linking.idp)
    assert len(sent) == 10 and {r.payload["to"] for r in sent} == {phone}
    assert sorted(r.ref for r in sent) == numbers[:10]  # the 11th account's notice dropped
    again = run(cli_env(linking, profile, databases, tmp_path), "--once", "--wait", "0.5")
    assert again.returncode == 0 and len(notices(linking.idp)) == 10  # resumed past the end


def test_notices_to_different_holders_do_not_share_one_bucket(linking):
    """System notices have no client address: three holders, three notices, although the SMS
    guard allows two per address (the old shared "linking-service" bucket)."""
    from idp.adapters.sql.outbox import SqlOutbox
    from idp.extensions import db
    from idp.services.delivery import DeliveryService, MessageTemplates, SmsPumpingGuard
    from idp.services.link_events import LinkEventNotifier

    live = linking.idp
    holders = [linking.user_token() for _ in range(3)]
    _, taker = linking.user_token()
    move_accounts(linking, holders, taker, first=720)
    client = GrpcLinkingClient(linking.target, mint(live))
    try:
        with live.ctx():
            store = live.services.store
            guard = SmsPumpingGuard(store, per_address_hour=2)
            delivery = DeliveryService(SqlOutbox(db.session), store, MessageTemplates(), guard)
            notifier = LinkEventNotifier(db.session, store, delivery)
            events = client.events(notifier.cursor(), wait=1)
            assert notifier.handle(events) == 3 and notifier.cursor() == events[-1].cursor
    finally:
        client.close()
    assert len(notices(live)) == 3


class PoisonedDelivery:
    """The real delivery service, except that notices to one contact raise (as a broken
    template or a malformed record would): a poison event, for the consumer."""

    def __init__(self, real, poison: str) -> None:
        self.real, self.poison = real, poison

    def notify_system(self, kind, value, template, **kw):
        if value == self.poison:
            raise ValueError("cannot render this notice")
        return self.real.notify_system(kind, value, template, **kw)


def test_a_poison_event_is_retried_then_set_aside_and_the_stream_goes_on(linking, caplog):
    from idp.adapters.sql.models import ParkedEvent
    from idp.extensions import db
    from idp.services.link_events import LinkEventNotifier

    live = linking.idp
    poisoned, healthy = linking.user_token(), linking.user_token()
    _, taker = linking.user_token()
    move_accounts(linking, [poisoned, healthy], taker, first=740)
    client = GrpcLinkingClient(linking.target, mint(live))
    try:
        with live.ctx():
            services = live.services
            poison = services.users.get(poisoned[0]).phone
            delivery = PoisonedDelivery(services.delivery, poison)
            notifier = LinkEventNotifier(db.session, services.store, delivery, max_attempts=3)
            results = []
            for _ in range(3):
                events = client.events(notifier.cursor(), wait=1)
                results.append((notifier.handle(events), notifier.stalled))
            assert results == [(0, True), (0, True), (1, False)]
            assert client.events(notifier.cursor(), wait=0.5) == []  # nothing left behind
            [parked] = db.session.query(ParkedEvent).all()
            assert parked.attempts == 3 and parked.parked_at is not None
            assert parked.event["previous_subject"] == poisoned[0]
            assert "ValueError" in parked.last_error
    finally:
        client.close()
    [notice] = notices(live)
    assert notice.payload["to"] != poison
    assert f"link event {parked.event_id}" in caplog.text and "set aside" in caplog.text

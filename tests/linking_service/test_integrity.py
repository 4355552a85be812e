"""The linking service's own integrity under races and crashes (issue 7): proof limits that
parallel calls cannot outrun, no transaction held across the directory's connection, a
request id that survives a crash, and an event stream without gaps on PostgreSQL."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa

from elk_proto.linking.v1 import linking_pb2 as pb
from elk_proto.linking.v1 import linking_pb2_grpc
from linking_service.adapters.sql.models import LinkEventRow
from linking_service.adapters.sql.outbox import append_event
from linking_service.errors import reason_of
from tests.linking_service.conftest import SECRET_KEY
from tests.linking_service.test_attachment import NUMBER, attach_by_number, rid
from tests.support import Clock

ROOT = Path(__file__).resolve().parents[2]
HOME_PHONE = "+73422000001"
PIN = "1234"


class RecordingDirectory:
    """The SQL directory, recording every proof it verifies. A verification waits briefly
    for a second one to start, so that parallel verifications, if the service allows them,
    overlap for certain (a wait on a condition, not a timed assertion)."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.verified: list[str] = []
        self._lock = threading.Lock()
        self._second = threading.Event()
        self.fail_with: BaseException | None = None

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def find_account(self, number):
        if self.fail_with is not None:
            raise self.fail_with
        return self._inner.find_account(number)

    def _record(self, secret: str) -> None:
        with self._lock:
            self.verified.append(secret)
            if len(self.verified) >= 2:
                self._second.set()
        self._second.wait(0.3)

    def verify_phone(self, account_number, phone, pin):
        self._record(pin)
        return self._inner.verify_phone(account_number, phone, pin)

    def verify_internet(self, account_number, login, password):
        self._record(password)
        return self._inner.verify_internet(account_number, login, password)


def phone_flow(linking, md) -> str:
    flow = linking.stub.StartAttachment(
        pb.StartAttachmentRequest(request_id=rid(), region="Пермский край", account_number=NUMBER),
        metadata=md,
    )
    flow = linking.stub.ChooseService(
        pb.ChooseServiceRequest(
            request_id=rid(), flow_id=flow.flow_id, service_type=pb.SERVICE_TYPE_HOME_PHONE
        ),
        metadata=md,
    )
    return flow.flow_id


def prove_pin(linking, md, flow_id, pin, request_id=None):
    try:
        return linking.stub.ProveService(
            pb.ProveServiceRequest(
                request_id=request_id or rid(),
                flow_id=flow_id,
                home_phone=pb.HomePhoneProof(phone_number=HOME_PHONE, pin=pin),
            ),
            metadata=md,
            timeout=120,
        ).state
    except grpc.RpcError as error:
        return (error.code(), reason_of(error))


def seed(linking) -> None:
    linking.add_account(
        NUMBER, internet=("perm-inet-1", "inet-pass"), phone_service=(HOME_PHONE, PIN)
    )


# --- 1. proof limits ------------------------------------------------------------------------


def test_parallel_proofs_on_one_flow_verify_once(make_linking):
    linking = make_linking(directory=RecordingDirectory)
    directory = linking.server.directory
    seed(linking)
    _, token = linking.user_token()
    md = linking.auth(token)
    flow_id = phone_flow(linking, md)
    wrong = [f"{9000 + i}" for i in range(50)]
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(lambda pin: prove_pin(linking, md, flow_id, pin), wrong))
    assert len(directory.verified) == 1, directory.verified
    assert outcomes.count(pb.FLOW_STATE_REFUSED) == 1
    assert all(
        o == (grpc.StatusCode.FAILED_PRECONDITION, "FLOW_STATE")
        for o in outcomes
        if o != pb.FLOW_STATE_REFUSED
    ), outcomes
    # one failure counted of five: the right PIN still works, on a new flow
    assert prove_pin(linking, md, phone_flow(linking, md), PIN) == pb.FLOW_STATE_ATTACHED


def test_parallel_proofs_across_flows_stop_at_the_limit(make_linking):
    clock = Clock()
    linking = make_linking(
        directory=RecordingDirectory, clock=clock, LINKING_IDENTITY_MAX_FLOWS="60"
    )
    directory = linking.server.directory
    seed(linking)
    _, token = linking.user_token()
    md = linking.auth(token)
    flows = [phone_flow(linking, md) for _ in range(50)]
    with ThreadPoolExecutor(16) as pool:
        outcomes = list(
            pool.map(lambda i: prove_pin(linking, md, flows[i], f"{9000 + i}"), range(50))
        )
    assert len(directory.verified) <= 5, directory.verified
    assert outcomes.count(pb.FLOW_STATE_REFUSED) == len(directory.verified)
    exhausted = (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_ATTEMPTS")
    assert outcomes.count(exhausted) == 50 - len(directory.verified)
    # locked now, even for the right PIN; a refused attempt leaves its flow open
    assert prove_pin(linking, md, flows[-1], PIN) == exhausted
    clock.advance(15 * 60 + 1)
    assert prove_pin(linking, md, phone_flow(linking, md), PIN) == pb.FLOW_STATE_ATTACHED
    assert directory.verified[-1] == PIN


# --- 2. reads hold no lock across a second connection; no error text leaks ------------------


def test_get_attachment_of_a_finished_flow_answers_at_once(linking):
    seed(linking)
    _, token = linking.user_token()
    md = linking.auth(token)
    flow = attach_by_number(linking, token)
    assert flow.state == pb.FLOW_STATE_ATTACHED
    again = linking.stub.GetAttachment(
        pb.GetAttachmentRequest(flow_id=flow.flow_id), metadata=md, timeout=10
    )
    assert again.state == pb.FLOW_STATE_ATTACHED and again.account.number == NUMBER
    assert set(again.account.services) == {
        pb.SERVICE_TYPE_HOME_INTERNET,
        pb.SERVICE_TYPE_HOME_PHONE,
    }


def test_an_unexpected_error_is_internal_without_its_text(make_linking, caplog):
    # The IdP's migrations (run by the session fixtures) load a logging file config that
    # disables the loggers that existed then; the server's own logging is what is tested.
    logging.getLogger("linking_service.interceptors").disabled = False
    linking = make_linking(directory=RecordingDirectory)
    seed(linking)
    linking.server.directory.fail_with = RuntimeError("sqlite3.OperationalError: s3cr3t-detail")
    _, token = linking.user_token()
    with pytest.raises(grpc.RpcError) as info:
        linking.stub.StartAttachment(
            pb.StartAttachmentRequest(
                request_id=rid(), region="Пермский край", account_number=NUMBER
            ),
            metadata=linking.auth(token),
            timeout=10,
        )
    error = info.value
    assert error.code() == grpc.StatusCode.INTERNAL
    assert reason_of(error) == "INTERNAL"
    assert "s3cr3t" not in (error.details() or "") and "sqlite3" not in (error.details() or "")
    assert "s3cr3t-detail" in caplog.text  # logged on the server side


# --- 3. a request id survives a crash --------------------------------------------------------


def test_a_retry_after_a_crash_gets_the_real_answer(linking, tmp_path):
    seed(linking)
    _, token = linking.user_token()
    md = linking.auth(token)
    flow = linking.stub.StartAttachment(
        pb.StartAttachmentRequest(request_id=rid(), region="Пермский край", account_number=NUMBER),
        metadata=md,
    )
    flow = linking.stub.ChooseService(
        pb.ChooseServiceRequest(
            request_id=rid(), flow_id=flow.flow_id, service_type=pb.SERVICE_TYPE_HOME_INTERNET
        ),
        metadata=md,
    )
    request = pb.ProveServiceRequest(
        request_id=rid(),
        flow_id=flow.flow_id,
        home_internet=pb.HomeInternetProof(login="perm-inet-1", password="inet-pass"),
    )
    marker, port_file = tmp_path / "verifying", tmp_path / "port"
    env = {
        **os.environ,
        "LINKING_DATABASE_URL": linking.database_url,
        "LINKING_LISTEN": "127.0.0.1:0",
        "LINKING_IDP_ISSUER": linking.idp.url,
        "LINKING_SECRET_KEY": SECRET_KEY,
        "CRASH_MARKER": str(marker),
        "CRASH_PORT_FILE": str(port_file),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.linking_service.crash_server"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: port_file.exists() and port_file.read_text().strip(), proc)
        channel = grpc.insecure_channel(f"127.0.0.1:{port_file.read_text().strip()}")
        doomed = linking_pb2_grpc.LinkingServiceStub(channel).ProveService.future(
            request, metadata=md, timeout=60
        )
        wait_for(marker.exists, proc)  # the call is inside the proof check
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        with pytest.raises(grpc.RpcError):
            doomed.result()
        channel.close()
    finally:
        if proc.poll() is None:
            proc.kill()
    answer = linking.stub.ProveService(request, metadata=md, timeout=30)
    assert answer.state == pb.FLOW_STATE_ATTACHED and answer.account.number == NUMBER
    assert linking.stub.ProveService(request, metadata=md, timeout=30) == answer
    events = list(
        linking.stub.StreamEvents(
            pb.StreamEventsRequest(cursor=0),
            timeout=0.5,
            metadata=linking.auth(linking.service_token("linking:auto")),
        )
    )
    assert [e.type for e in events] == [pb.EVENT_TYPE_ATTACHED]


def wait_for(condition, proc, timeout: float = 60.0) -> None:
    """Wait until ``condition()`` holds; fail with the process's output if it died."""
    done = threading.Event()
    for _ in range(int(timeout / 0.05)):
        if condition():
            return
        if proc.poll() is not None:
            pytest.fail(f"server exited: {proc.stdout.read()}")
        done.wait(0.05)
    pytest.fail("condition not reached")


# --- 5. the event stream has no gaps on PostgreSQL ------------------------------------------


def _waiting(linking, pid: int) -> bool:
    """Whether the backend ``pid`` waits for a lock."""
    engine = linking.sessions.kw["bind"]
    with engine.connect() as conn:
        return bool(
            conn.execute(
                sa.text("select wait_event_type = 'Lock' from pg_stat_activity where pid = :pid"),
                {"pid": pid},
            ).scalar()
        )


@pytest.mark.parametrize("profile", ["pg-redis"], indirect=True)
def test_events_committed_out_of_order_are_all_streamed(linking):
    """Writer A takes the first cursor and holds its transaction open; writer B writes a
    later event and commits first. A consumer resuming from the last cursor it saw must see
    both events exactly once."""
    service = linking.server.service
    a_has_cursor, release_a, b_done = threading.Event(), threading.Event(), threading.Event()
    ids = {}

    def writer(name, hold: bool):
        with linking.sessions() as db, db.begin():
            ids[f"{name}-pid"] = db.execute(sa.text("select pg_backend_pid()")).scalar_one()
            row = LinkEventRow.new("attached", NUMBER, name, None, 1)
            append_event(db, row)
            ids[name] = row.event_id
            if hold:
                a_has_cursor.set()
                assert release_a.wait(300)
        if not hold:
            b_done.set()

    a = threading.Thread(target=writer, args=("a", True))
    a.start()
    assert a_has_cursor.wait(300)
    b = threading.Thread(target=writer, args=("b", False))
    b.start()
    # B has either committed (cursors out of commit order) or waits for A (serialized).
    wait_until = threading.Event()
    while not (b_done.is_set() or ("b-pid" in ids and _waiting(linking, ids["b-pid"]))):
        wait_until.wait(0.02)
    seen = service.events_after(0)
    cursor = seen[-1].cursor if seen else 0
    release_a.set()
    a.join(300)
    b.join(300)
    assert not (a.is_alive() or b.is_alive())
    seen += service.events_after(cursor)
    assert sorted(e.event_id for e in seen) == sorted([ids["a"], ids["b"]])

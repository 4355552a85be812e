"""The linking service killed with SIGKILL in the middle of re-attachments (on PostgreSQL of
the test's own): after a restart every account has exactly one holder, and the event stream
holds exactly the moves that committed — each answered move once, nothing invented. Calls
whose answer the kill swallowed are retried with their request id, as a client would, and
get the real answer."""

from __future__ import annotations

import threading
import uuid
from collections import Counter

import grpc
import sqlalchemy as sa

from elk_proto.linking.v1 import linking_pb2 as pb
from elk_proto.linking.v1 import linking_pb2_grpc
from idp.adapters.store_memory import MemoryStore
from linking_service.adapters.sql.db import create_schema, make_engine, make_sessions
from linking_service.billing_import import import_records
from tests.faults.servers import LinkingProcess
from tests.linking_service.conftest import CHEAP
from tests.support import make_user, wait_for

REGION = "Пермский край"
ACCOUNTS = [f"15900000{n:04d}" for n in range(901, 905)]
USERS = 3
MOVES_BEFORE_KILL = 6
#: No answer: the call may or may not have committed before the process died.
UNKNOWN = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
    grpc.StatusCode.UNKNOWN,
}


def login_of(number: str) -> tuple[str, str]:
    return f"fault.{number}", f"Pw-{number}"


def seed_billing(url: str) -> None:
    engine = make_engine(url)
    create_schema(engine)
    records = [
        {
            "number": number,
            "region": REGION,
            "family_name": "Петров",
            "given_name": "Иван",
            "middle_name": None,
            "phones": [],
            "emails": [],
            "status": "active",
            "services": [
                {"type": "internet", "login": login_of(number)[0], "password": login_of(number)[1]}
            ],
        }
        for number in ACCOUNTS
    ]
    import_records(enumerate(records, start=1), make_sessions(engine), CHEAP)
    engine.dispose()


class Mover:
    """One person moving the accounts to themself, round after round, through the wizard's
    three calls; records every proof's request and its answer (or that none came)."""

    def __init__(self, live, sub: str, target: str, offset: int) -> None:
        self.live, self.sub, self.offset = live, sub, offset
        self.channel = grpc.insecure_channel(target)
        self.stub = linking_pb2_grpc.LinkingServiceStub(self.channel)
        self.answered: list[pb.AttachmentFlow] = []
        self.unanswered: list[pb.ProveServiceRequest] = []
        self.errors: list = []

    def metadata(self):
        with self.live.ctx():
            token = self.live.services.tokens.customer_token(
                self.sub, "linking", "urn:elk:linking-service"
            )
        return (("authorization", f"Bearer {token}"),)

    def move(self, number: str) -> None:
        md = self.metadata()
        try:
            flow = self.stub.StartAttachment(
                pb.StartAttachmentRequest(
                    request_id=uuid.uuid4().hex, region=REGION, account_number=number
                ),
                metadata=md,
                timeout=10,
            )
            flow = self.stub.ChooseService(
                pb.ChooseServiceRequest(
                    request_id=uuid.uuid4().hex,
                    flow_id=flow.flow_id,
                    service_type=pb.SERVICE_TYPE_HOME_INTERNET,
                ),
                metadata=md,
                timeout=10,
            )
        except grpc.RpcError:
            return  # nothing moves before the proof
        login, password = login_of(number)
        request = pb.ProveServiceRequest(
            request_id=uuid.uuid4().hex,
            flow_id=flow.flow_id,
            home_internet=pb.HomeInternetProof(login=login, password=password),
        )
        self.prove(request, md)

    def prove(self, request, md, retry: bool = False) -> None:
        # A retry waits for the channel to connect: gRPC shares connections between channels
        # and would otherwise fail at once while backing off from the dead process.
        try:
            self.answered.append(
                self.stub.ProveService(request, metadata=md, timeout=20, wait_for_ready=retry)
            )
        except grpc.RpcError as error:
            if error.code() in UNKNOWN:
                self.unanswered.append(request)
                self.errors.append((error.code(), error.details()))
            # Any other status is a definite refusal (another person moved it first).

    def run(self, stop: threading.Event) -> None:
        turn = self.offset
        while not stop.is_set():
            self.move(ACCOUNTS[turn % len(ACCOUNTS)])
            turn += 1

    def moves(self) -> int:
        return sum(1 for a in self.answered if a.state == pb.FLOW_STATE_REATTACHED)


def test_sigkill_in_the_middle_of_reattachments(own_postgres, start_idp, tmp_path):
    live = start_idp(f"sqlite:///{tmp_path / 'idp.sqlite3'}", MemoryStore())
    seed_billing(own_postgres.url)
    linking = LinkingProcess(own_postgres.url, live.url, LINKING_IDENTITY_MAX_FLOWS="100000")
    linking.start()
    movers = [Mover(live, make_user(live)[0], linking.target, i) for i in range(USERS)]
    try:
        for number in ACCOUNTS:  # every account gets its first holder
            movers[0].move(number)
        assert [a.state for a in movers[0].answered] == [pb.FLOW_STATE_ATTACHED] * len(ACCOUNTS)

        stop = threading.Event()
        threads = [threading.Thread(target=m.run, args=(stop,), daemon=True) for m in movers]
        for thread in threads:
            thread.start()
        wait_for(lambda: sum(m.moves() for m in movers) >= MOVES_BEFORE_KILL, 60, "moves under way")
        linking.kill()  # SIGKILL: no drain, no rollback by the process
        stop.set()
        for thread in threads:
            thread.join(60)
            assert not thread.is_alive()

        linking.start()
        for mover in movers:
            pending, mover.unanswered = mover.unanswered, []
            for request in pending:
                mover.prove(request, mover.metadata(), retry=True)
            assert mover.unanswered == [], f"a retry got no answer: {mover.errors}"

        events = list(
            movers[0].stub.StreamEvents(
                pb.StreamEventsRequest(cursor=0),
                metadata=(("authorization", f"Bearer {service_token(live)}"),),
                timeout=5,
                wait_for_ready=True,
            )
        )
        holders = current_holders(own_postgres.url)
    finally:
        for mover in movers:
            mover.channel.close()
        linking.close()

    # Exactly one holder per account, and it is the last event's subject.
    assert sorted(holders) == sorted(ACCOUNTS) and all(holders.values())
    assert len({e.event_id for e in events}) == len(events)
    assert [e.cursor for e in events] == sorted(e.cursor for e in events)
    for number in ACCOUNTS:
        chain = [e for e in events if e.account_number == number]
        assert chain[0].type == pb.EVENT_TYPE_ATTACHED and not chain[0].previous_subject
        for before, after in zip(chain, chain[1:], strict=False):
            assert after.type == pb.EVENT_TYPE_REATTACHED
            assert after.previous_subject == before.subject != after.subject
        assert chain[-1].subject == holders[number]
    # The stream holds exactly the answered moves: none lost, none invented.
    answered = Counter(
        (a.account.number, m.sub)
        for m in movers
        for a in m.answered
        if a.state == pb.FLOW_STATE_REATTACHED
    )
    streamed = Counter(
        (e.account_number, e.subject) for e in events if e.type == pb.EVENT_TYPE_REATTACHED
    )
    assert streamed == answered
    assert sum(answered.values()) >= MOVES_BEFORE_KILL


def service_token(live) -> str:
    with live.ctx():
        return live.services.tokens.service_token("linking:auto", "urn:elk:linking-service")


def current_holders(url: str) -> dict[str, str | None]:
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT account_number, subject FROM links")).all()
    engine.dispose()
    return dict(rows)


def test_health_follows_the_database(own_postgres):
    """The probe: NOT_SERVING while PostgreSQL is stopped, SERVING once it is back. Health
    checks need no token: no IdP is asked for keys."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    seed_billing(own_postgres.url)
    linking = LinkingProcess(own_postgres.url, "http://127.0.0.1:9")
    linking.start()
    channel = grpc.insecure_channel(linking.target)
    health = health_pb2_grpc.HealthStub(channel)

    def status():
        try:
            return health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5).status
        except grpc.RpcError:
            return None

    try:
        assert status() == health_pb2.HealthCheckResponse.SERVING
        own_postgres.stop()
        try:
            wait_for(
                lambda: status() == health_pb2.HealthCheckResponse.NOT_SERVING, 30, "NOT_SERVING"
            )
        finally:
            own_postgres.start()
        wait_for(lambda: status() == health_pb2.HealthCheckResponse.SERVING, 30, "SERVING again")
    finally:
        channel.close()
        linking.close()

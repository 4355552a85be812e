"""Trust, limits, concurrency and operations of the linking service (checklist 14-19, 41-44)."""

from __future__ import annotations

import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from elk_proto.linking.v1 import linking_pb2 as pb
from linking_service.errors import reason_of
from tests.linking_service.test_attachment import NUMBER, attach_by_number, call_error, rid
from tests.processes import free_port


@pytest.fixture
def seeded(linking):
    linking.add_account(NUMBER, internet=("perm-inet-1", "inet-pass"))
    return linking


def test_calls_need_a_valid_token_with_the_right_scope(seeded):
    request = pb.ListAccountsRequest()
    code, reason = call_error(seeded.stub.ListAccounts, request)
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING")
    code, reason = call_error(
        seeded.stub.ListAccounts, request, metadata=(("authorization", "Basic abc"),)
    )
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING")
    code, reason = call_error(seeded.stub.ListAccounts, request, metadata=seeded.auth("not.a.jwt"))
    assert (code, reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")
    # a token for the IdP's own userinfo (no resource) has the wrong audience
    _, userinfo_token = seeded.user_token(resource=None)
    code, _ = call_error(seeded.stub.ListAccounts, request, metadata=seeded.auth(userinfo_token))
    assert code == grpc.StatusCode.UNAUTHENTICATED
    # internal scope for a customer call, customer scope for internal calls
    code, reason = call_error(
        seeded.stub.ListAccounts,
        request,
        metadata=seeded.auth(seeded.service_token("linking:read")),
    )
    assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "SCOPE_MISSING")


def test_identity_comes_from_the_token_only(seeded):
    """Checklist 18: a customer cannot act as, or read about, another identity."""
    owner, token_a = seeded.user_token()
    _, token_b = seeded.user_token()
    attach_by_number(seeded, token_a)
    for method, request in (
        (seeded.stub.ListIdentityAccounts, pb.ListIdentityAccountsRequest(subject=owner)),
        (seeded.stub.GetAccountOwner, pb.GetAccountOwnerRequest(account_number=NUMBER)),
        (seeded.stub.AutoAttach, pb.AutoAttachRequest(request_id=rid(), subject=owner)),
    ):
        code, _ = call_error(method, request, metadata=seeded.auth(token_b))
        assert code == grpc.StatusCode.PERMISSION_DENIED
    # B's own list is empty, whatever B asks
    assert not seeded.stub.ListAccounts(
        pb.ListAccountsRequest(), metadata=seeded.auth(token_b)
    ).accounts
    internal = seeded.stub.ListIdentityAccounts(
        pb.ListIdentityAccountsRequest(subject=owner),
        metadata=seeded.auth(seeded.service_token("linking:read")),
    )
    assert [a.number for a in internal.accounts] == [NUMBER]


def test_password_guessing_is_limited_per_service_login(seeded):
    """Checklist 41: after 5 failures the login is locked for everyone, with retry-after."""
    _, token = seeded.user_token()
    for _ in range(5):
        assert attach_by_number(seeded, token, password="guess").state == pb.FLOW_STATE_REFUSED
    _, token2 = seeded.user_token()
    with pytest.raises(grpc.RpcError) as info:
        attach_by_number(seeded, token2)  # even the right password, from another identity
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert reason_of(info.value) == "TOO_MANY_ATTEMPTS"
    trailers = dict(info.value.trailing_metadata())
    assert int(trailers["retry-after"]) > 0


def test_flows_per_identity_are_limited(make_linking):
    """Checklist 42: walking through account numbers is capped per identity."""
    linking = make_linking(LINKING_IDENTITY_MAX_FLOWS="3")
    _, token = linking.user_token()
    md = linking.auth(token)
    for i in range(3):
        linking.stub.StartAttachment(
            pb.StartAttachmentRequest(
                request_id=rid(), region="Пермский край", account_number=f"59000000010{i}"
            ),
            metadata=md,
        )
    code, reason = call_error(
        linking.stub.StartAttachment,
        pb.StartAttachmentRequest(
            request_id=rid(), region="Пермский край", account_number="590000000109"
        ),
        metadata=md,
    )
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_ATTEMPTS")


def test_concurrent_reattachments_leave_one_owner_and_one_event(seeded):
    """Checklist 43: 50 identities race for one held account; exactly one wins."""
    holder, holder_token = seeded.user_token()
    attach_by_number(seeded, holder_token)
    racers = [seeded.user_token() for _ in range(50)]
    flows = []
    for _, token in racers:
        md = seeded.auth(token)
        flow = seeded.stub.StartAttachment(
            pb.StartAttachmentRequest(
                request_id=rid(), region="Пермский край", account_number=NUMBER
            ),
            metadata=md,
        )
        flow = seeded.stub.ChooseService(
            pb.ChooseServiceRequest(
                request_id=rid(), flow_id=flow.flow_id, service_type=pb.SERVICE_TYPE_HOME_INTERNET
            ),
            metadata=md,
        )
        flows.append((md, flow.flow_id))

    def prove(args):
        md, flow_id = args
        try:
            return seeded.stub.ProveService(
                pb.ProveServiceRequest(
                    request_id=rid(),
                    flow_id=flow_id,
                    home_internet=pb.HomeInternetProof(login="perm-inet-1", password="inet-pass"),
                ),
                metadata=md,
                timeout=60,
            ).state
        except grpc.RpcError as error:
            return (error.code(), reason_of(error))

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(prove, flows))
    wins = [o for o in outcomes if o == pb.FLOW_STATE_REATTACHED]
    assert len(wins) == 1, outcomes
    assert all(
        o == (grpc.StatusCode.ABORTED, "CONCURRENT_CHANGE") for o in outcomes if o not in wins
    )
    events = list(
        seeded.stub.StreamEvents(
            pb.StreamEventsRequest(cursor=0),
            timeout=1.0,
            metadata=seeded.auth(seeded.service_token("linking:auto")),
        )
    )
    assert [e.type for e in events] == [pb.EVENT_TYPE_ATTACHED, pb.EVENT_TYPE_REATTACHED]
    assert events[1].previous_subject == holder
    owner = seeded.stub.GetAccountOwner(
        pb.GetAccountOwnerRequest(account_number=NUMBER),
        metadata=seeded.auth(seeded.service_token("linking:read")),
    )
    assert owner.subject == events[1].subject != holder


def test_auto_attach_for_a_new_identity(linking):
    linking.add_account(
        "590000000201", family="Иванова", given="Мария", middle="Петровна", phones=["+79990000001"]
    )
    linking.add_account(
        "590000000202",
        family="Иванова",
        given="Мария",
        middle="Петровна",
        emails=["maria@example.ru"],
    )
    linking.add_account(
        "590000000203", family="Иванова", given="Мария", phones=["+79990000009"]
    )  # no confirmed contact in common
    token = linking.service_token("linking:auto")
    request = pb.AutoAttachRequest(
        request_id=rid(),
        subject="new-sub",
        family_name="Иванова",
        given_name="Мария",
        middle_name="Петровна",
        region="Пермский край",
        confirmed_phones=["+79990000001"],
        confirmed_emails=["Maria@Example.ru"],
    )
    response = linking.stub.AutoAttach(request, metadata=linking.auth(token))
    assert sorted(a.number for a in response.attached) == ["590000000201", "590000000202"]
    # a retry with the same request id gives the same answer, attaches nothing twice
    again = linking.stub.AutoAttach(request, metadata=linking.auth(token))
    assert again == response
    events = list(
        linking.stub.StreamEvents(
            pb.StreamEventsRequest(), timeout=0.5, metadata=linking.auth(token)
        )
    )
    assert len(events) == 2


def test_outbox_delivers_after_a_restart(make_linking):
    first = make_linking()
    first.add_account(NUMBER, internet=("perm-inet-1", "inet-pass"))
    _, token = first.user_token()
    attach_by_number(first, token)
    first.close()
    second = make_linking()
    events = list(
        second.stub.StreamEvents(
            pb.StreamEventsRequest(cursor=0),
            timeout=0.5,
            metadata=second.auth(second.service_token("linking:auto")),
        )
    )
    assert [e.account_number for e in events] == [NUMBER]


def test_oversized_messages_are_refused(make_linking):
    linking = make_linking(LINKING_MAX_MESSAGE_BYTES="4096")
    _, token = linking.user_token()
    code, _ = call_error(
        linking.stub.StartAttachment,
        pb.StartAttachmentRequest(
            request_id=rid(), region="Пермский край" * 1000, account_number=NUMBER
        ),
        metadata=linking.auth(token),
    )
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_health_and_switchable_reflection(make_linking):
    on = make_linking()
    health = health_pb2_grpc.HealthStub(on.channel)
    answer = health.Check(health_pb2.HealthCheckRequest(service="elk.linking.v1.LinkingService"))
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(on.channel)
    replies = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for r in replies for s in r.list_services_response.service}
    assert "elk.linking.v1.LinkingService" in names
    off = make_linking(LINKING_REFLECTION="false")
    stub = reflection_pb2_grpc.ServerReflectionStub(off.channel)
    with pytest.raises(grpc.RpcError) as info:
        list(
            stub.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            )
        )
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize("profile", ["embedded"], indirect=True)
def test_serve_drains_on_sigterm(live, tmp_path):
    """The real command: starts, reports SERVING, exits cleanly on SIGTERM."""
    listen = f"127.0.0.1:{free_port()}"
    env = {
        "LINKING_DATABASE_URL": f"sqlite:///{tmp_path / 'l.sqlite3'}",
        "LINKING_LISTEN": listen,
        "LINKING_IDP_ISSUER": live.url,
        "LINKING_VAR_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    # Migrating is an explicit step; serve refuses a database that is behind.
    subprocess.run(
        [sys.executable, "-m", "linking_service.cli", "db", "upgrade"],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "linking_service.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        channel = grpc.insecure_channel(listen)
        grpc.channel_ready_future(channel).result(timeout=20)
        health = health_pb2_grpc.HealthStub(channel)
        assert (
            health.Check(health_pb2.HealthCheckRequest()).status
            == health_pb2.HealthCheckResponse.SERVING
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, proc.stdout.read()
        channel.close()
    finally:
        if proc.poll() is None:
            proc.kill()


def test_stream_honours_the_deadline(seeded):
    events = list(
        seeded.stub.StreamEvents(
            pb.StreamEventsRequest(cursor=0),
            timeout=0.6,
            metadata=seeded.auth(seeded.service_token("linking:auto")),
        )
    )
    # Without the deadline the stream would wait for events forever and the test would hang.
    assert events == []

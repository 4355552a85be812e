"""The attachment flow through a real server with real IdP tokens."""

from __future__ import annotations

import uuid

import grpc
import pytest

from elk_proto.linking.v1 import linking_pb2 as pb
from linking_service.errors import reason_of

NUMBER = "590000000001"
OTHER = "590000000002"


def rid() -> str:
    return uuid.uuid4().hex


def call_error(fn, *args, **kwargs) -> tuple[grpc.StatusCode, str | None]:
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, **kwargs)
    return info.value.code(), reason_of(info.value)


def attach_by_number(
    linking, token, number=NUMBER, login="perm-inet-1", password="inet-pass", region="Пермский край"
):
    md = linking.auth(token)
    flow = linking.stub.StartAttachment(
        pb.StartAttachmentRequest(request_id=rid(), region=region, account_number=number),
        metadata=md,
    )
    assert flow.state == pb.FLOW_STATE_CHOOSE_SERVICE
    assert set(flow.services) == {pb.SERVICE_TYPE_HOME_INTERNET, pb.SERVICE_TYPE_HOME_PHONE}
    flow = linking.stub.ChooseService(
        pb.ChooseServiceRequest(
            request_id=rid(), flow_id=flow.flow_id, service_type=pb.SERVICE_TYPE_HOME_INTERNET
        ),
        metadata=md,
    )
    assert flow.state == pb.FLOW_STATE_PROVE
    return linking.stub.ProveService(
        pb.ProveServiceRequest(
            request_id=rid(),
            flow_id=flow.flow_id,
            home_internet=pb.HomeInternetProof(login=login, password=password),
        ),
        metadata=md,
    )


@pytest.fixture
def seeded(linking):
    linking.add_account(
        NUMBER, internet=("perm-inet-1", "inet-pass"), phone_service=("+73422000001", "1234")
    )
    linking.add_account(OTHER, region="Москва", internet=("msk-inet-2", "other-pass"))
    return linking


def test_attach_by_account_number_and_list(seeded):
    sub, token = seeded.user_token()
    result = attach_by_number(seeded, token)
    assert result.state == pb.FLOW_STATE_ATTACHED
    assert result.account.number == NUMBER and result.account.region == "Пермский край"
    listed = seeded.stub.ListAccounts(pb.ListAccountsRequest(), metadata=seeded.auth(token))
    assert [a.number for a in listed.accounts] == [NUMBER]
    owner = seeded.stub.GetAccountOwner(
        pb.GetAccountOwnerRequest(account_number=NUMBER),
        metadata=seeded.auth(seeded.service_token("linking:read")),
    )
    assert owner.subject == sub


def test_attach_by_phone_with_pin_and_by_service_login(seeded):
    _, token = seeded.user_token()
    md = seeded.auth(token)
    flow = seeded.stub.StartAttachment(
        pb.StartAttachmentRequest(
            request_id=rid(), region="Пермский край", phone_number="8 (342) 200-00-01"
        ),
        metadata=md,
    )
    flow = seeded.stub.ChooseService(
        pb.ChooseServiceRequest(
            request_id=rid(), flow_id=flow.flow_id, service_type=pb.SERVICE_TYPE_HOME_PHONE
        ),
        metadata=md,
    )
    done = seeded.stub.ProveService(
        pb.ProveServiceRequest(
            request_id=rid(),
            flow_id=flow.flow_id,
            home_phone=pb.HomePhoneProof(phone_number="+7 342 200-00-01", pin="1234"),
        ),
        metadata=md,
    )
    assert done.state == pb.FLOW_STATE_ATTACHED and done.account.number == NUMBER

    _, token2 = seeded.user_token()
    md2 = seeded.auth(token2)
    flow = seeded.stub.StartAttachment(
        pb.StartAttachmentRequest(
            request_id=rid(),
            region="Москва",
            service_login="MSK-INET-2",
            service_type=pb.SERVICE_TYPE_HOME_INTERNET,
        ),
        metadata=md2,
    )
    assert flow.state == pb.FLOW_STATE_PROVE  # step 2 skipped
    done = seeded.stub.ProveService(
        pb.ProveServiceRequest(
            request_id=rid(),
            flow_id=flow.flow_id,
            home_internet=pb.HomeInternetProof(login="msk-inet-2", password="other-pass"),
        ),
        metadata=md2,
    )
    assert done.state == pb.FLOW_STATE_ATTACHED and done.account.number == OTHER


def test_refusal_reveals_nothing(seeded):
    """Checklist 42: a nonexistent account and a wrong password look the same."""
    _, token = seeded.user_token()
    wrong = attach_by_number(seeded, token, password="wrong")
    missing = attach_by_number(seeded, token, number="590000009999")
    other_region = attach_by_number(
        seeded, token, number=OTHER, login="msk-inet-2", password="other-pass"
    )
    for flow in (wrong, missing, other_region):
        assert flow.state == pb.FLOW_STATE_REFUSED
        assert flow.refusal_reason == pb.REFUSAL_REASON_PROOF_FAILED
        assert not flow.HasField("account")


def test_reattach_moves_the_account_and_records_both_identities(seeded):
    first, token_a = seeded.user_token()
    second, token_b = seeded.user_token()
    assert attach_by_number(seeded, token_a).state == pb.FLOW_STATE_ATTACHED
    moved = attach_by_number(seeded, token_b)
    assert moved.state == pb.FLOW_STATE_REATTACHED
    assert not seeded.stub.ListAccounts(
        pb.ListAccountsRequest(), metadata=seeded.auth(token_a)
    ).accounts
    events = list(
        seeded.stub.StreamEvents(
            pb.StreamEventsRequest(cursor=0),
            timeout=1.0,
            metadata=seeded.auth(seeded.service_token("linking:auto")),
        )
    )
    kinds = [(e.type, e.subject, e.previous_subject) for e in events]
    assert kinds == [(pb.EVENT_TYPE_ATTACHED, first, ""), (pb.EVENT_TYPE_REATTACHED, second, first)]
    assert len({e.event_id for e in events}) == 2
    # attaching again what one already holds is a no-op: no new event
    assert attach_by_number(seeded, token_b).state == pb.FLOW_STATE_ATTACHED
    resumed = list(
        seeded.stub.StreamEvents(
            pb.StreamEventsRequest(cursor=events[-1].cursor),
            timeout=0.5,
            metadata=seeded.auth(seeded.service_token("linking:auto")),
        )
    )
    assert resumed == []


def test_detach(seeded):
    _, token_a = seeded.user_token()
    _, token_b = seeded.user_token()
    attach_by_number(seeded, token_a)
    code, reason = call_error(
        seeded.stub.DetachAccount,
        pb.DetachAccountRequest(request_id=rid(), account_number=NUMBER),
        metadata=seeded.auth(token_b),
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "ACCOUNT_NOT_ATTACHED")
    seeded.stub.DetachAccount(
        pb.DetachAccountRequest(request_id=rid(), account_number=NUMBER),
        metadata=seeded.auth(token_a),
    )
    owner = seeded.stub.GetAccountOwner(
        pb.GetAccountOwnerRequest(account_number=NUMBER),
        metadata=seeded.auth(seeded.service_token("linking:read")),
    )
    assert owner.subject == ""


@pytest.mark.parametrize(
    "number",
    ["59000000000", "5900000000011", "59000000000a", "５９００００００００01", " 590000000001", ""],
)
def test_account_numbers_are_exactly_12_ascii_digits(seeded, number):
    _, token = seeded.user_token()
    code, reason = call_error(
        seeded.stub.StartAttachment,
        pb.StartAttachmentRequest(request_id=rid(), region="Пермский край", account_number=number),
        metadata=seeded.auth(token),
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ACCOUNT_NUMBER")


def test_unknown_region_and_missing_lookup_are_invalid(seeded):
    _, token = seeded.user_token()
    md = seeded.auth(token)
    code, reason = call_error(
        seeded.stub.StartAttachment,
        pb.StartAttachmentRequest(request_id=rid(), region="Пермь", account_number=NUMBER),
        metadata=md,
    )
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_REGION")
    code, _ = call_error(
        seeded.stub.StartAttachment,
        pb.StartAttachmentRequest(request_id=rid(), region="Пермский край"),
        metadata=md,
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_request_ids_make_retries_safe(seeded):
    """Checklist 44: same id and payload → the first answer; another payload → refused."""
    _, token = seeded.user_token()
    md = seeded.auth(token)
    request = pb.StartAttachmentRequest(
        request_id="retry-1", region="Пермский край", account_number=NUMBER
    )
    first = seeded.stub.StartAttachment(request, metadata=md)
    again = seeded.stub.StartAttachment(request, metadata=md)
    assert again.flow_id == first.flow_id
    changed = pb.StartAttachmentRequest(
        request_id="retry-1", region="Пермский край", account_number=OTHER
    )
    code, reason = call_error(seeded.stub.StartAttachment, changed, metadata=md)
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_ID_REUSED")
    code, _ = call_error(
        seeded.stub.StartAttachment,
        pb.StartAttachmentRequest(region="Пермский край", account_number=NUMBER),
        metadata=md,
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT  # no request id


def test_flow_state_machine_refuses_illegal_steps(seeded):
    _, token_a = seeded.user_token()
    _, token_b = seeded.user_token()
    md = seeded.auth(token_a)
    flow = seeded.stub.StartAttachment(
        pb.StartAttachmentRequest(request_id=rid(), region="Пермский край", account_number=NUMBER),
        metadata=md,
    )
    code, reason = call_error(
        seeded.stub.ProveService,
        pb.ProveServiceRequest(
            request_id=rid(),
            flow_id=flow.flow_id,
            home_internet=pb.HomeInternetProof(login="perm-inet-1", password="inet-pass"),
        ),
        metadata=md,
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "FLOW_STATE")
    code, reason = call_error(
        seeded.stub.GetAttachment,
        pb.GetAttachmentRequest(flow_id=flow.flow_id),
        metadata=seeded.auth(token_b),
    )
    assert (code, reason) == (grpc.StatusCode.NOT_FOUND, "FLOW_NOT_FOUND")
    seeded.idp.clock.advance(16 * 60)
    code, reason = call_error(
        seeded.stub.ChooseService,
        pb.ChooseServiceRequest(
            request_id=rid(), flow_id=flow.flow_id, service_type=pb.SERVICE_TYPE_HOME_INTERNET
        ),
        metadata=md,
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "FLOW_EXPIRED")

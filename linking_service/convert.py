"""Protobuf <-> domain. The only module besides the servicer that imports generated code."""

from __future__ import annotations

from google.protobuf.timestamp_pb2 import Timestamp

from elk_proto.linking.v1 import linking_pb2 as pb
from linking_service.domain import (
    AttachedAccount,
    EventType,
    Flow,
    FlowState,
    InvalidArgument,
    LinkEvent,
    RefusalReason,
    ServiceType,
)

SERVICE_TO_PB = {
    ServiceType.HOME_INTERNET: pb.SERVICE_TYPE_HOME_INTERNET,
    ServiceType.HOME_PHONE: pb.SERVICE_TYPE_HOME_PHONE,
}
SERVICE_FROM_PB = {v: k for k, v in SERVICE_TO_PB.items()}
STATE_TO_PB = {
    FlowState.CHOOSE_SERVICE: pb.FLOW_STATE_CHOOSE_SERVICE,
    FlowState.PROVE: pb.FLOW_STATE_PROVE,
    FlowState.VERIFYING: pb.FLOW_STATE_PROVE,  # being checked: still step 3 for the caller
    FlowState.ATTACHED: pb.FLOW_STATE_ATTACHED,
    FlowState.REATTACHED: pb.FLOW_STATE_REATTACHED,
    FlowState.REFUSED: pb.FLOW_STATE_REFUSED,
    FlowState.EXPIRED: pb.FLOW_STATE_EXPIRED,
}
REFUSAL_TO_PB = {
    RefusalReason.PROOF_FAILED: pb.REFUSAL_REASON_PROOF_FAILED,
    RefusalReason.ACCOUNT_INACTIVE: pb.REFUSAL_REASON_ACCOUNT_INACTIVE,
}
EVENT_TO_PB = {
    EventType.ATTACHED: pb.EVENT_TYPE_ATTACHED,
    EventType.DETACHED: pb.EVENT_TYPE_DETACHED,
    EventType.REATTACHED: pb.EVENT_TYPE_REATTACHED,
}


def service_type(value: int, required: bool = True) -> ServiceType | None:
    if value in SERVICE_FROM_PB:
        return SERVICE_FROM_PB[value]
    if required:
        raise InvalidArgument("service_type must be HOME_INTERNET or HOME_PHONE")
    return None


def timestamp(seconds: int | None) -> Timestamp | None:
    return Timestamp(seconds=seconds) if seconds else None


def account(value: AttachedAccount) -> pb.BillingAccount:
    return pb.BillingAccount(
        number=value.number,
        region=value.region,
        attached_at=timestamp(value.attached_at),
        services=[SERVICE_TO_PB[s] for s in value.services],
    )


def accounts(values) -> pb.ListAccountsResponse:
    return pb.ListAccountsResponse(accounts=[account(v) for v in values])


def flow(value: Flow) -> pb.AttachmentFlow:
    message = pb.AttachmentFlow(
        flow_id=value.id,
        state=STATE_TO_PB[value.state],
        services=[pb.SERVICE_TYPE_HOME_INTERNET, pb.SERVICE_TYPE_HOME_PHONE],
        expires_at=timestamp(value.expires_at),
    )
    if value.service_type:
        message.service_type = SERVICE_TO_PB[value.service_type]
    if value.account:
        message.account.CopyFrom(account(value.account))
    if value.refusal_reason:
        message.refusal_reason = REFUSAL_TO_PB[value.refusal_reason]
    return message


def event(value: LinkEvent) -> pb.LinkEvent:
    return pb.LinkEvent(
        cursor=value.cursor,
        event_id=value.event_id,
        type=EVENT_TO_PB[value.type],
        account_number=value.account_number,
        subject=value.subject or "",
        previous_subject=value.previous_subject or "",
        occurred_at=timestamp(value.occurred_at),
    )

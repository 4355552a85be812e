"""Domain errors mapped once to gRPC status codes with a google.rpc.ErrorInfo detail."""

from __future__ import annotations

import collections
import logging

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from linking_service.domain import (
    ConcurrentChange,
    FailedPrecondition,
    InvalidArgument,
    LinkingError,
    NotFound,
    PermissionDenied,
    TooManyAttempts,
    Unauthenticated,
)

DOMAIN = "linking.elk"
log = logging.getLogger(__name__)

CODES: list[tuple[type[LinkingError], grpc.StatusCode, int]] = [
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED, code_pb2.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED, code_pb2.PERMISSION_DENIED),
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT, code_pb2.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND, code_pb2.NOT_FOUND),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION, code_pb2.FAILED_PRECONDITION),
    (TooManyAttempts, grpc.StatusCode.RESOURCE_EXHAUSTED, code_pb2.RESOURCE_EXHAUSTED),
    (ConcurrentChange, grpc.StatusCode.ABORTED, code_pb2.ABORTED),
]


#: Every ErrorInfo reason the service sends, under its status code. Each is documented in
#: protos/linking/v1/linking.proto (a test holds the two together); ``to_status`` sends
#: nothing else.
REASONS: dict[grpc.StatusCode, frozenset[str]] = {
    grpc.StatusCode.UNAUTHENTICATED: frozenset({"TOKEN_MISSING", "TOKEN_INVALID"}),
    grpc.StatusCode.PERMISSION_DENIED: frozenset({"SCOPE_MISSING"}),
    grpc.StatusCode.INVALID_ARGUMENT: frozenset(
        {
            "INVALID_ACCOUNT_NUMBER",
            "INVALID_REGION",
            "INVALID_PHONE",
            "INVALID_LOGIN",
            "INVALID_REQUEST",
            "REQUEST_ID_REUSED",
        }
    ),
    grpc.StatusCode.NOT_FOUND: frozenset({"FLOW_NOT_FOUND", "ACCOUNT_NOT_ATTACHED"}),
    grpc.StatusCode.FAILED_PRECONDITION: frozenset({"FLOW_STATE", "FLOW_EXPIRED"}),
    grpc.StatusCode.RESOURCE_EXHAUSTED: frozenset({"TOO_MANY_ATTEMPTS"}),
    grpc.StatusCode.ABORTED: frozenset({"CONCURRENT_CHANGE"}),
    grpc.StatusCode.INTERNAL: frozenset({"INTERNAL"}),
}


def code_of(error_class: type[LinkingError]) -> grpc.StatusCode:
    return next(
        (code for cls, code, _ in CODES if issubclass(error_class, cls)), grpc.StatusCode.INTERNAL
    )


class RichStatus(
    collections.namedtuple("RichStatus", ("code", "details", "trailing_metadata")), grpc.Status
):
    """A grpc.Status whose trailers carry the ErrorInfo detail and any extra metadata."""


def _rich(code: int, reason: str, message: str, extra: tuple = ()) -> RichStatus:
    info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code, message=message[:200], details=[detail])
    base = rpc_status.to_status(status)
    return RichStatus(base.code, base.details, tuple(base.trailing_metadata) + extra)


def internal_status() -> RichStatus:
    """What the caller learns of an unexpected failure: that it happened, nothing more."""
    return _rich(code_pb2.INTERNAL, "INTERNAL", "internal error")


def to_status(error: LinkingError) -> RichStatus:
    """The rich status for ``error``, with ``retry-after`` when the caller must wait."""
    code = next((c for cls, _, c in CODES if isinstance(error, cls)), code_pb2.INTERNAL)
    if error.reason not in REASONS[code_of(type(error))]:
        log.error("undocumented reason %r for %s", error.reason, type(error).__name__)
        return internal_status()
    extra = ()
    if isinstance(error, TooManyAttempts):
        extra = (("retry-after", str(error.retry_after)),)
    return _rich(code, error.reason, str(error), extra)


def reason_of(error: grpc.RpcError) -> str | None:
    """For clients and tests: the ErrorInfo reason carried by an RPC error."""
    status = rpc_status.from_call(error)
    if status is None:
        return None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info.reason
    return None

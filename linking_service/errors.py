"""Domain errors mapped once to gRPC status codes with a google.rpc.ErrorInfo detail."""

from __future__ import annotations

import collections

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

CODES: list[tuple[type[LinkingError], grpc.StatusCode, int]] = [
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED, code_pb2.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED, code_pb2.PERMISSION_DENIED),
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT, code_pb2.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND, code_pb2.NOT_FOUND),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION, code_pb2.FAILED_PRECONDITION),
    (TooManyAttempts, grpc.StatusCode.RESOURCE_EXHAUSTED, code_pb2.RESOURCE_EXHAUSTED),
    (ConcurrentChange, grpc.StatusCode.ABORTED, code_pb2.ABORTED),
]


class RichStatus(
    collections.namedtuple("RichStatus", ("code", "details", "trailing_metadata")), grpc.Status
):
    """A grpc.Status whose trailers carry the ErrorInfo detail and any extra metadata."""


def to_status(error: LinkingError) -> RichStatus:
    """The rich status for ``error``, with ``retry-after`` when the caller must wait."""
    code = next((c for cls, _, c in CODES if isinstance(error, cls)), code_pb2.INTERNAL)
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=code, message=str(error)[:200], details=[detail])
    base = rpc_status.to_status(status)
    trailers = tuple(base.trailing_metadata)
    if isinstance(error, TooManyAttempts):
        trailers += (("retry-after", str(error.retry_after)),)
    return RichStatus(base.code, base.details, trailers)


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

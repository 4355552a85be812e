"""Server interceptor: authenticate, authorise by scope, honour deadlines, map errors.

Every RPC passes here, of every handler kind (unary or streaming, either way); only the
health and reflection services are public (they carry no data). Any other method needs a
token with the scope ``METHOD_SCOPES`` names for it — a method it does not name is refused —
and a handler of a kind this module does not know is refused. The verified principal reaches
the servicer through a context variable set in the handler's own thread: the identity always
comes from the token. An unexpected exception is logged here and answered ``INTERNAL`` with a
generic message: its text never reaches the caller.
"""

from __future__ import annotations

import contextvars
import logging

import grpc

from linking_service.auth import Principal
from linking_service.domain import LinkingError, PermissionDenied, Unauthenticated
from linking_service.errors import internal_status, to_status

log = logging.getLogger(__name__)

SERVICE = "/elk.linking.v1.LinkingService/"
#: Services anyone may call: health checks and (when enabled) reflection.
PUBLIC = (
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)
CUSTOMER, AUTO, READ = "linking", "linking:auto", "linking:read"

#: The scope each method requires.
METHOD_SCOPES = {
    "ListAccounts": CUSTOMER,
    "StartAttachment": CUSTOMER,
    "ChooseService": CUSTOMER,
    "ProveService": CUSTOMER,
    "GetAttachment": CUSTOMER,
    "DetachAccount": CUSTOMER,
    "AutoAttach": AUTO,
    "StreamEvents": AUTO,
    "GetAccountOwner": READ,
    "ListIdentityAccounts": READ,
}

_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal")


def current_principal() -> Principal:
    return _principal.get()


def _abort(context: grpc.ServicerContext, error: LinkingError):
    context.abort_with_status(to_status(error))


def _bearer(metadata) -> str:
    for key, value in metadata or ():
        if key == "authorization":
            if value[:7].lower() == "bearer " and value[7:].strip():
                return value[7:].strip()
            break
    raise Unauthenticated("a Bearer access token is required", "TOKEN_MISSING")


class AuthInterceptor(grpc.ServerInterceptor):
    """The guarded handler of a method is built once and reused (grpc asks the interceptors
    on every RPC): everything per call — the token, the deadline — is read from the call's
    own context, never from the cached wrapper."""

    def __init__(self, verifier) -> None:
        self._verifier = verifier
        # method -> (the handler wrapped, its guarded handler); one entry per served method.
        self._guarded: dict[str, tuple[object, grpc.RpcMethodHandler]] = {}

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(PUBLIC):
            return handler
        cached = self._guarded.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        guarded = self._guard(method, handler)
        self._guarded[method] = (handler, guarded)
        return guarded

    def _guard(self, method: str, handler) -> grpc.RpcMethodHandler:
        scope = METHOD_SCOPES.get(method[len(SERVICE) :]) if method.startswith(SERVICE) else None
        verify = self._verifier.verify

        def guard(context: grpc.ServicerContext) -> Principal:
            try:
                principal = verify(_bearer(context.invocation_metadata()))
                if scope is None or scope not in principal.scopes:
                    raise PermissionDenied(f"the token lacks the scope {scope!r}")
            except LinkingError as error:
                _abort(context, error)
            remaining = context.time_remaining()
            if remaining is not None and remaining <= 0:
                context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")
            return principal

        def failed(context: grpc.ServicerContext, error: Exception):
            if isinstance(error, LinkingError):
                _abort(context, error)
            if context.code() is not None:  # the handler aborted the call itself
                raise error
            log.exception("%s failed", method)
            context.abort_with_status(internal_status())

        def unary_response(behavior):
            def run(request, context):
                token = _principal.set(guard(context))
                try:
                    return behavior(request, context)
                except Exception as error:  # noqa: BLE001 - mapped, never leaked
                    failed(context, error)
                finally:
                    _principal.reset(token)

            return run

        def stream_response(behavior):
            def run(request, context):
                token = _principal.set(guard(context))
                try:
                    yield from behavior(request, context)
                except Exception as error:  # noqa: BLE001 - mapped, never leaked
                    failed(context, error)
                finally:
                    _principal.reset(token)

            return run

        kinds = (
            (handler.unary_unary, grpc.unary_unary_rpc_method_handler, unary_response),
            (handler.unary_stream, grpc.unary_stream_rpc_method_handler, stream_response),
            (handler.stream_unary, grpc.stream_unary_rpc_method_handler, unary_response),
            (handler.stream_stream, grpc.stream_stream_rpc_method_handler, stream_response),
        )
        for behavior, make, wrap in kinds:
            if behavior is not None:
                return make(
                    wrap(behavior),
                    request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer,
                )
        return grpc.unary_unary_rpc_method_handler(_refuse_unknown_kind)


def _refuse_unknown_kind(request, context):
    context.abort(grpc.StatusCode.UNIMPLEMENTED, "unsupported handler kind")

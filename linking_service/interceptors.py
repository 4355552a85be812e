"""Server interceptor: authenticate, authorise by scope, honour deadlines, map errors.

Every RPC of ``elk.linking.v1.LinkingService`` passes here; the health and reflection
services do not (they carry no data). The verified principal reaches the servicer through a
context variable set in the handler's own thread — the identity always comes from the token.
"""

from __future__ import annotations

import contextvars
import logging

import grpc

from linking_service.auth import Principal
from linking_service.domain import LinkingError, PermissionDenied, Unauthenticated
from linking_service.errors import to_status

log = logging.getLogger(__name__)

SERVICE = "/elk.linking.v1.LinkingService/"
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
    def __init__(self, verifier) -> None:
        self._verifier = verifier

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith(SERVICE):
            return handler
        name = method[len(SERVICE) :]
        scope = METHOD_SCOPES.get(name)
        metadata = handler_call_details.invocation_metadata

        def guard(context: grpc.ServicerContext) -> Principal | None:
            try:
                principal = self._verifier.verify(_bearer(metadata))
                if scope is None or scope not in principal.scopes:
                    raise PermissionDenied(f"the token lacks the scope {scope!r}")
            except LinkingError as error:
                _abort(context, error)
            if context.time_remaining() is not None and context.time_remaining() <= 0:
                context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded")
            return principal

        def run(behavior, request, context):
            principal = guard(context)
            token = _principal.set(principal)
            try:
                return behavior(request, context)
            except LinkingError as error:
                _abort(context, error)
            finally:
                _principal.reset(token)

        if handler.unary_unary:
            inner = handler.unary_unary
            return grpc.unary_unary_rpc_method_handler(
                lambda req, ctx: run(inner, req, ctx),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            inner_stream = handler.unary_stream

            def stream(req, ctx):
                # Streams act for no identity (scope check only), so no principal is set.
                guard(ctx)
                try:
                    yield from inner_stream(req, ctx)
                except LinkingError as error:
                    _abort(ctx, error)

            return grpc.unary_stream_rpc_method_handler(
                stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

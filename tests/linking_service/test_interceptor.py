"""Every handler kind passes the authentication interceptor (issue 7): a server built with
``AuthInterceptor`` and generic handlers of all four kinds, a recording token verifier."""

from __future__ import annotations

from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from linking_service.auth import Principal
from linking_service.domain import Unauthenticated
from linking_service.errors import reason_of
from linking_service.interceptors import AuthInterceptor, current_principal

SERVICE = "elk.linking.v1.LinkingService"


class RecordingVerifier:
    """Accepts the token "good" (scope ``linking``) and "auto" (``linking:auto``)."""

    def __init__(self) -> None:
        self.tokens: list[str] = []

    def verify(self, token: str) -> Principal:
        self.tokens.append(token)
        scopes = {"good": {"linking"}, "auto": {"linking:auto"}}.get(token)
        if scopes is None:
            raise Unauthenticated("bad token")
        return Principal("https://idp", f"sub-{token}", "client", frozenset(scopes), {})


def _stream_unary(requests, context):
    return b"|".join(requests) + b"/" + current_principal().subject.encode()


def _stream_stream(requests, context):
    for request in requests:
        yield request + b"/" + current_principal().subject.encode()


def _unary_unary(request, context):
    return request


@pytest.fixture
def server():
    verifier = RecordingVerifier()
    server = grpc.server(futures.ThreadPoolExecutor(4), interceptors=[AuthInterceptor(verifier)])
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                SERVICE,
                {
                    # real method names (so a scope applies), served as other kinds
                    "ListAccounts": grpc.stream_unary_rpc_method_handler(_stream_unary),
                    "StartAttachment": grpc.stream_stream_rpc_method_handler(_stream_stream),
                    "Undeclared": grpc.unary_unary_rpc_method_handler(_unary_unary),
                },
            ),
            grpc.method_handlers_generic_handler(
                "other.v1.Other", {"Do": grpc.unary_unary_rpc_method_handler(_unary_unary)}
            ),
        )
    )
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield channel, verifier
    channel.close()
    server.stop(0)


def bearer(token):
    return (("authorization", f"Bearer {token}"),)


def test_stream_unary_and_stream_stream_need_a_token(server):
    channel, verifier = server
    stream_unary = channel.stream_unary(f"/{SERVICE}/ListAccounts")
    stream_stream = channel.stream_stream(f"/{SERVICE}/StartAttachment")
    for call in (
        lambda md: stream_unary(iter([b"a", b"b"]), metadata=md, timeout=10),
        lambda md: list(stream_stream(iter([b"a"]), metadata=md, timeout=10)),
    ):
        for md, reason in ((None, "TOKEN_MISSING"), (bearer("forged"), "TOKEN_INVALID")):
            with pytest.raises(grpc.RpcError) as info:
                call(md)
            assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert reason_of(info.value) == reason
        with pytest.raises(grpc.RpcError) as info:
            call(bearer("auto"))  # a valid token without the method's scope
        assert reason_of(info.value) == "SCOPE_MISSING"
    assert stream_unary(iter([b"a", b"b"]), metadata=bearer("good"), timeout=10) == b"a|b/sub-good"
    assert list(stream_stream(iter([b"x"]), metadata=bearer("good"), timeout=10)) == [b"x/sub-good"]
    assert "forged" in verifier.tokens


def test_methods_without_a_declared_scope_are_refused(server):
    channel, _ = server
    for method in (f"/{SERVICE}/Undeclared", "/other.v1.Other/Do"):
        with pytest.raises(grpc.RpcError) as info:
            channel.unary_unary(method)(b"x", metadata=bearer("good"), timeout=10)
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED, method


def test_health_stays_public(server):
    channel, verifier = server
    answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    assert verifier.tokens == []


def test_each_call_is_judged_by_its_own_token(server):
    """The guarded handler of a method is built once and reused: the token, and so the
    principal, still come from each call's own metadata."""
    channel, verifier = server
    call = channel.stream_unary(f"/{SERVICE}/ListAccounts")
    for token in ("good", "forged", "auto", None, "good"):
        md = bearer(token) if token else None
        if token == "good":
            assert call(iter([b"a"]), metadata=md, timeout=10) == b"a/sub-good"
            continue
        with pytest.raises(grpc.RpcError) as info:
            call(iter([b"a"]), metadata=md, timeout=10)
        assert info.value.code() in (
            grpc.StatusCode.UNAUTHENTICATED,
            grpc.StatusCode.PERMISSION_DENIED,
        )
    assert verifier.tokens == ["good", "forged", "auto", "good"]

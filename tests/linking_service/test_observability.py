"""The linking service's metrics and logs: RPCs counted by method and code, JWKS refreshes,
pool use, scraped for real; the IdP's request id arrives in gRPC metadata and is on the
linking service's JSON lines of that RPC; no token in any line."""

from __future__ import annotations

import io
import json
import logging
import uuid

import grpc
import pytest

from elk_common.logjson import bind_request_id, reset_request_id
from elk_proto.linking.v1 import linking_pb2 as pb
from idp.adapters.linking_grpc import GrpcLinkingClient
from linking_service.auth import TokenVerifier
from linking_service.observability import configure_logging, jwks_refreshed
from tests.linking_service.conftest import AUDIENCE
from tests.metrics_support import in_process_endpoint, present, scrape, value

OWNER = "/elk.linking.v1.LinkingService/GetAccountOwner"
AUTO = "/elk.linking.v1.LinkingService/AutoAttach"


@pytest.fixture
def json_lines():
    """The linking service's log handler, JSON format, on a captured stream."""
    stream = io.StringIO()
    handler = configure_logging("json", stream=stream)
    root = logging.getLogger()
    level = root.level
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_rpcs_counted_by_method_and_code(linking):
    url = in_process_endpoint()
    token = linking.service_token("linking:read")
    before = scrape(url)
    linking.add_account("590000000777", phones=["+79995550777"])
    for _ in range(2):
        linking.stub.GetAccountOwner(
            pb.GetAccountOwnerRequest(account_number="590000000777"), metadata=linking.auth(token)
        )
    with pytest.raises(grpc.RpcError) as refused:
        linking.stub.GetAccountOwner(pb.GetAccountOwnerRequest(account_number="590000000777"))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    after = scrape(url)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("linking_grpc_requests_total", method=OWNER, code="OK") == 2
    assert delta("linking_grpc_requests_total", method=OWNER, code="UNAUTHENTICATED") == 1
    assert delta("linking_grpc_request_duration_seconds_count", method=OWNER, code="OK") == 2
    assert present(after, "linking_db_pool_connections_in_use")


def test_jwks_refreshes_counted(live):
    url = in_process_endpoint()
    before = value(scrape(url), "linking_jwks_refreshes_total", result="ok")
    with live.ctx():
        token = live.services.tokens.service_token("linking:read", AUDIENCE)
    verifier = TokenVerifier(live.url, AUDIENCE, ["ES256", "RS256"], on_refresh=jwks_refreshed)
    verifier.verify(token)
    verifier.verify(token)  # cached: no second fetch
    assert value(scrape(url), "linking_jwks_refreshes_total", result="ok") - before == 1
    failing = TokenVerifier(
        "http://127.0.0.1:9/", AUDIENCE, ["ES256"], timeout=0.5, on_refresh=jwks_refreshed
    )
    errors = value(scrape(url), "linking_jwks_refreshes_total", result="error")
    with pytest.raises(Exception):  # noqa: B017 - refused, whatever the verifier calls it
        failing.verify(token)
    assert value(scrape(url), "linking_jwks_refreshes_total", result="error") - errors == 1


def test_the_idps_request_id_reaches_the_linking_services_log(linking, json_lines):
    live = linking.idp
    request_id = "req-" + uuid.uuid4().hex[:12]

    def mint():
        with live.ctx():
            return live.services.tokens.service_token("linking:auto", AUDIENCE)

    client = GrpcLinkingClient(linking.target, mint)
    url = in_process_endpoint()
    calls = value(scrape(url), "idp_linking_calls_total", method=AUTO)
    token = bind_request_id(request_id)
    try:
        with live.ctx():
            from idp.adapters.sql.models import User

            user = User(
                id=str(uuid.uuid4()),
                family_name="Орлова",
                given_name="Вера",
                region="Пермский край",
            )
            client.auto_attach(user)
    finally:
        reset_request_id(token)
        client.close()
    # The IdP counted its side of the call too.
    assert value(scrape(url), "idp_linking_calls_total", method=AUTO) - calls == 1
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines() if line]
    access = [line for line in lines if line["logger"] == "linking_service.access"]
    assert any(
        line.get("request_id") == request_id and AUTO in line["message"] for line in access
    ), lines
    assert all(line["service"] == "linking" for line in lines)
    # Every line is redacted: a token that reached a message would be hidden.
    assert "eyJ" not in json_lines.getvalue()


def test_secrets_in_a_linking_log_line_are_hidden(json_lines):
    jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlLWJ5dGVzLTEyMzQ1"
    flow = str(uuid.uuid4())
    logging.getLogger("linking_service.test").warning(
        "token %s for +79995551234 and anna@example.ru, flow %s", jwt, flow
    )
    line = json.loads(json_lines.getvalue().splitlines()[-1])
    assert jwt not in line["message"] and "eyJ" not in line["message"]
    assert "+79995551234" not in line["message"] and "anna@" not in line["message"]
    assert flow in line["message"]  # identifiers stay readable


def test_each_rpc_logs_its_own_request_id(linking, json_lines):
    """The observed handler of a method is built once and reused: the request id still comes
    from each call's own metadata (a fresh one when the caller sent none or a bad one)."""
    token = linking.service_token("linking:read")
    linking.add_account("590000000778", phones=["+79995550778"])
    sent = ["req-" + uuid.uuid4().hex[:12] for _ in range(2)] + [None, "bad id with spaces"]
    for request_id in sent:
        metadata = linking.auth(token) + ((("x-request-id", request_id),) if request_id else ())
        linking.stub.GetAccountOwner(
            pb.GetAccountOwnerRequest(account_number="590000000778"), metadata=metadata
        )
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines() if line]
    ids = [
        line.get("request_id")
        for line in lines
        if line["logger"] == "linking_service.access" and OWNER in line["message"]
    ]
    assert ids[:2] == sent[:2], lines
    assert len(ids) == 4 and len(set(ids)) == 4 and "bad id with spaces" not in ids

"""TLS between the services: the IdP reaches a linking service that requires mutual TLS with
the CA and client certificate from its settings, and a client without them is refused."""

from __future__ import annotations

import grpc
import pytest

from elk_proto.linking.v1 import linking_pb2 as pb
from elk_proto.linking.v1 import linking_pb2_grpc
from idp.adapters.linking_grpc import GrpcLinkingClient, tls_credentials
from idp.config import ConfigError, load_settings
from tests.linking_service.test_idp_auto_attach import mint, register
from tests.linking_service.test_settings import self_signed


def owner(linking, channel, number: str) -> str:
    return (
        linking_pb2_grpc.LinkingServiceStub(channel)
        .GetAccountOwner(
            pb.GetAccountOwnerRequest(account_number=number),
            metadata=linking.auth(linking.service_token("linking:read")),
            timeout=10,
        )
        .subject
    )


def test_the_idp_attaches_over_mutual_tls(make_linking, tmp_path):
    cert, key, cert_pem, _ = self_signed(tmp_path, "server")
    client_cert, client_key, client_pem, client_key_pem = self_signed(tmp_path, "client")
    linking = make_linking(
        LINKING_TLS_CERT=str(cert), LINKING_TLS_KEY=str(key), LINKING_TLS_CLIENT_CA=str(client_cert)
    )
    live = linking.idp
    for number, phone in (("590000000401", "+79995550401"), ("590000000402", "+79995550402")):
        linking.add_account(
            number, family="Орлова", given="Вера", middle="Павловна", phones=[phone]
        )
    target = f"localhost:{linking.server.port}"
    admin = grpc.secure_channel(
        target, grpc.ssl_channel_credentials(cert_pem, client_key_pem, client_pem)
    )

    # From the settings the composition root reads: CA + our client certificate.
    settings = load_settings(
        {
            "IDP_VAR_DIR": str(tmp_path),
            "IDP_LINKING_TARGET": target,
            "IDP_LINKING_TLS_CA": str(cert),
            "IDP_LINKING_TLS_CERT": str(client_cert),
            "IDP_LINKING_TLS_KEY": str(client_key),
        }
    )
    credentials = tls_credentials(
        settings.linking_tls_ca, settings.linking_tls_cert, settings.linking_tls_key
    )
    client = GrpcLinkingClient(target, mint(live), timeout=10, credentials=credentials)
    live.app.extensions["idp.linking"] = client
    try:
        sub = register(live, "+79995550401")
    finally:
        client.close()
    assert owner(linking, admin, "590000000401") == sub

    # Without our client certificate the handshake fails: nothing is attached, the
    # registration itself still completes (attachment is best effort).
    refused = GrpcLinkingClient(
        target, mint(live), timeout=5, credentials=tls_credentials(str(cert))
    )
    live.app.extensions["idp.linking"] = refused
    try:
        assert register(live, "+79995550402")
    finally:
        refused.close()
    assert owner(linking, admin, "590000000402") == ""
    admin.close()


def test_tls_settings_are_checked(tmp_path):
    cert, key, _, _ = self_signed(tmp_path, "server")
    base = {
        "IDP_VAR_DIR": str(tmp_path),
        "IDP_ENV": "production",
        "IDP_ISSUER": "https://id.example.com",
        "IDP_SECRET_KEY": "p" * 32,
        "IDP_DATABASE_URL": "postgresql://idp@db.internal:5432/idp",
        "IDP_REDIS_URL": "redis://cache.internal:6379/0",
        "IDP_SMS_GATEWAY_URL": "https://sms.internal/send",
        "IDP_SMTP_HOST": "smtp.internal",
        "IDP_LINKING_TARGET": "linking.internal:50051",
    }
    cases = [
        ({}, "IDP_LINKING_TLS_CA"),  # production: no plaintext by default
        ({"IDP_LINKING_TLS_CA": str(tmp_path / "missing.pem")}, "IDP_LINKING_TLS_CA"),
        ({"IDP_LINKING_TLS_CA": str(cert), "IDP_LINKING_TLS_CERT": str(cert)}, "go together"),
        ({"IDP_LINKING_TLS_CERT": str(cert), "IDP_LINKING_TLS_KEY": str(key)}, "needs"),
        ({"IDP_LINKING_ALLOW_PLAINTEXT": "yes"}, "IDP_LINKING_ALLOW_PLAINTEXT"),
    ]
    for changes, message in cases:
        with pytest.raises(ConfigError) as info:
            load_settings({**base, **changes})
        assert message in str(info.value), (changes, str(info.value))
    assert load_settings({**base, "IDP_LINKING_TLS_CA": str(cert)}).linking_tls_ca == str(cert)
    allowed = load_settings({**base, "IDP_LINKING_ALLOW_PLAINTEXT": "true"})
    assert allowed.linking_allow_plaintext and allowed.linking_tls_ca is None

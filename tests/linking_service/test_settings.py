"""Settings, production mode, TLS and the keyed idempotency digest (issue 7)."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import subprocess
import sys

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc

from elk_proto.linking.v1 import linking_pb2 as pb
from elk_proto.linking.v1 import linking_pb2_grpc
from linking_service.adapters.sql.db import transaction
from linking_service.adapters.sql.models import IdempotencyRow
from linking_service.config import ConfigError, load_settings
from tests.linking_service.conftest import SECRET_KEY
from tests.linking_service.test_attachment import NUMBER, rid

PG = "postgresql://linking:db-pa55word@db.internal/linking"
KEY = "k" * 40


def self_signed(tmp_path, name: str):
    """A self-signed certificate for localhost / 127.0.0.1: (cert path, key path, PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / f"{name}.crt").write_bytes(cert_pem)
    (tmp_path / f"{name}.key").write_bytes(key_pem)
    return tmp_path / f"{name}.crt", tmp_path / f"{name}.key", cert_pem, key_pem


def production(tmp_path, **changes):
    cert, key, _, _ = self_signed(tmp_path, "server")
    env = {
        "LINKING_ENV": "production",
        "LINKING_DATABASE_URL": PG,
        "LINKING_IDP_ISSUER": "https://id.example.ru",
        "LINKING_SECRET_KEY": KEY,
        "LINKING_TLS_CERT": str(cert),
        "LINKING_TLS_KEY": str(key),
    }
    env.update(changes)
    return {k: v for k, v in env.items() if v is not None}


def test_repr_shows_no_secret(tmp_path):
    settings = load_settings(production(tmp_path))
    text = repr(settings)
    assert "db-pa55word" not in text and KEY not in text
    assert "production" in text  # the rest is still there to read


def test_production_accepts_a_complete_configuration(tmp_path):
    settings = load_settings(production(tmp_path))
    assert settings.reflection is False and settings.tls_cert is not None
    assert load_settings(production(tmp_path, LINKING_REFLECTION="true")).reflection is True
    behind_mesh = load_settings(
        production(
            tmp_path, LINKING_TLS_CERT=None, LINKING_TLS_KEY=None, LINKING_ALLOW_PLAINTEXT="true"
        )
    )
    assert behind_mesh.tls_cert is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"LINKING_IDP_ISSUER": "http://id.example.ru"}, "https"),
        ({"LINKING_DATABASE_URL": "sqlite:////tmp/l.sqlite3"}, "not SQLite"),
        ({"LINKING_DATABASE_URL": None}, "LINKING_DATABASE_URL must be set"),
        ({"LINKING_SECRET_KEY": None}, "LINKING_SECRET_KEY"),
        ({"LINKING_SECRET_KEY": "short"}, "LINKING_SECRET_KEY"),
        ({"LINKING_TLS_CERT": None, "LINKING_TLS_KEY": None}, "LINKING_ALLOW_PLAINTEXT"),
        ({"LINKING_TLS_KEY": None}, "go together"),
        ({"LINKING_TLS_CERT": "/nonexistent.crt"}, "no such file"),
        ({"LINKING_ENV": "staging"}, "LINKING_ENV"),
    ],
)
def test_production_refuses(tmp_path, changes, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(production(tmp_path, **changes))


def test_development_defaults(tmp_path):
    settings = load_settings({"LINKING_VAR_DIR": str(tmp_path)})
    assert settings.env == "development" and settings.reflection is True
    assert settings.database_url.startswith("sqlite") and settings.tls_cert is None
    # a generated secret, the same for every process on this machine
    assert len(settings.secret_key) >= 32
    assert load_settings({"LINKING_VAR_DIR": str(tmp_path)}).secret_key == settings.secret_key


def test_idempotency_digest_does_not_reveal_the_pin(linking):
    linking.add_account(NUMBER, phone_service=("+73422000001", "4821"))
    _, token = linking.user_token()
    md = linking.auth(token)
    flow = linking.stub.StartAttachment(
        pb.StartAttachmentRequest(request_id=rid(), region="Пермский край", account_number=NUMBER),
        metadata=md,
    )
    flow = linking.stub.ChooseService(
        pb.ChooseServiceRequest(
            request_id=rid(), flow_id=flow.flow_id, service_type=pb.SERVICE_TYPE_HOME_PHONE
        ),
        metadata=md,
    )
    request_id = rid()

    def request(pin):
        return pb.ProveServiceRequest(
            request_id=request_id,
            flow_id=flow.flow_id,
            home_phone=pb.HomePhoneProof(phone_number="+73422000001", pin=pin),
        ).SerializeToString(deterministic=True)

    linking.stub.ProveService(pb.ProveServiceRequest.FromString(request("4821")), metadata=md)
    with transaction(linking.sessions) as db:
        stored = db.query(IdempotencyRow).filter_by(request_id=request_id).one().payload_hash
    # Whoever reads the table cannot try the 10,000 PINs against it...
    plain = {
        hashlib.sha256(b"ProveService\0" + request(f"{n:04d}")).hexdigest() for n in range(10_000)
    }
    assert stored not in plain
    # ...without the service's key.
    keyed = hmac.new(SECRET_KEY.encode(), b"ProveService\0" + request("4821"), hashlib.sha256)
    assert stored == keyed.hexdigest()


def test_tls_and_mutual_tls(make_linking, tmp_path):
    cert, key, cert_pem, _ = self_signed(tmp_path, "server")
    client_cert, client_key, client_pem, client_key_pem = self_signed(tmp_path, "client")
    linking = make_linking(
        LINKING_TLS_CERT=str(cert), LINKING_TLS_KEY=str(key), LINKING_TLS_CLIENT_CA=str(client_cert)
    )
    target = f"localhost:{linking.server.port}"
    check = health_pb2.HealthCheckRequest()
    mutual = grpc.secure_channel(
        target, grpc.ssl_channel_credentials(cert_pem, client_key_pem, client_pem)
    )
    assert (
        health_pb2_grpc.HealthStub(mutual).Check(check, timeout=10).status
        == health_pb2.HealthCheckResponse.SERVING
    )
    _, token = linking.user_token()
    listed = linking_pb2_grpc.LinkingServiceStub(mutual).ListAccounts(
        pb.ListAccountsRequest(), metadata=linking.auth(token), timeout=10
    )
    assert list(listed.accounts) == []
    mutual.close()
    for channel in (
        grpc.secure_channel(target, grpc.ssl_channel_credentials(cert_pem)),  # no client cert
        grpc.insecure_channel(target),  # plaintext
    ):
        with pytest.raises(grpc.RpcError) as info:
            health_pb2_grpc.HealthStub(channel).Check(check, timeout=5)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        channel.close()


def test_tls_without_client_certificates(make_linking, tmp_path):
    cert, key, cert_pem, _ = self_signed(tmp_path, "server")
    linking = make_linking(LINKING_TLS_CERT=str(cert), LINKING_TLS_KEY=str(key))
    channel = grpc.secure_channel(
        f"localhost:{linking.server.port}", grpc.ssl_channel_credentials(cert_pem)
    )
    answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert answer.status == health_pb2.HealthCheckResponse.SERVING
    channel.close()


def test_serve_refuses_a_database_behind_the_code(tmp_path):
    env = {
        "LINKING_DATABASE_URL": f"sqlite:///{tmp_path / 'l.sqlite3'}",
        "LINKING_LISTEN": "127.0.0.1:0",
        "LINKING_VAR_DIR": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }
    for command in (["serve"], ["billing", "demo"]):
        run = subprocess.run(
            [sys.executable, "-m", "linking_service.cli", *command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert run.returncode != 0, run.stdout
        assert "linking-service db upgrade" in run.stderr and "Traceback" not in run.stderr

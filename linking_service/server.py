"""The composition root: builds the gRPC server with its servicer, health service,
reflection (switchable), interceptors, message-size caps, TLS and graceful shutdown.

It never migrates: a database whose schema is not at the code's head is refused
(``linking-service db upgrade`` is the one step that migrates)."""

from __future__ import annotations

import logging
import time
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from elk_proto.linking.v1 import linking_pb2, linking_pb2_grpc
from linking_service.adapters.sql.db import check_schema, make_engine, make_sessions
from linking_service.adapters.sql.idempotency import SqlIdempotency
from linking_service.attachment import AttachmentService
from linking_service.auth import TokenVerifier
from linking_service.config import LinkingSettings
from linking_service.interceptors import AuthInterceptor
from linking_service.observability import (
    ObservingInterceptor,
    instrument_pool,
    jwks_refreshed,
)
from linking_service.probe import DatabaseProbe
from linking_service.service import LinkingService
from linking_service.servicer import LinkingServicer
from linking_service.shutdown import StopSignal, exit_after

log = logging.getLogger(__name__)
SERVICE_NAME = linking_pb2.DESCRIPTOR.services_by_name["LinkingService"].full_name
#: Seconds past the grace period before the watchdog ends a drain that did not finish.
WATCHDOG_MARGIN = 2.0


@dataclass
class LinkingServer:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    service: LinkingService
    engine: object
    directory: object = None
    probe: DatabaseProbe | None = None

    def stop(self, grace: float | None = None) -> None:
        """Drain: report NOT_SERVING, refuse new RPCs, let running ones finish."""
        self.health.enter_graceful_shutdown()
        if self.probe is not None:
            self.probe.stop()
        self.server.stop(grace).wait()
        self.engine.dispose()

    def serve_until_signalled(self, grace: float, stop: StopSignal | None = None) -> None:
        """Serve until SIGTERM or SIGINT, then drain for at most ``grace`` seconds.

        Signals during the drain are only recorded (see ``shutdown``); should the drain or the
        interpreter's exit still hang, the watchdog ends the process just after ``grace``.
        ``stop``, made before ``build``, also catches a signal that came while starting."""
        stop = stop or StopSignal()
        stop.wait()
        exit_after(grace + WATCHDOG_MARGIN, "linking service: drain overran its grace; exiting")
        log.info("signal %s: draining for at most %ss", stop.signum, grace)
        self.stop(grace)


def build(
    settings: LinkingSettings,
    directory=None,
    verifier=None,
    clock=time.time,
) -> LinkingServer:
    engine = make_engine(settings.database_url)
    try:
        check_schema(engine)
    except BaseException:
        engine.dispose()
        raise
    instrument_pool(engine)
    sessions = make_sessions(engine)
    if directory is None:
        from linking_service.adapters.billing_sql import SqlBillingDirectory

        directory = SqlBillingDirectory(sessions)
    if verifier is None:
        verifier = TokenVerifier(
            settings.idp_issuer,
            settings.audience,
            settings.allowed_algs,
            cache_ttl=settings.jwks_cache_ttl,
            refresh_interval=settings.jwks_refresh_interval,
            timeout=settings.idp_timeout,
            on_refresh=jwks_refreshed,
        )
    service = LinkingService(sessions, directory, settings, clock)
    flows = AttachmentService(sessions, directory, settings, clock)
    servicer = LinkingServicer(
        service,
        flows,
        SqlIdempotency(sessions, settings.secret_key.encode(), clock),
        settings.events_poll_interval,
    )
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.workers, thread_name_prefix="rpc"),
        # Outermost first: every RPC is counted and carries its request id, refused ones too.
        interceptors=[ObservingInterceptor(), AuthInterceptor(verifier)],
        maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
            ("grpc.so_reuseport", 0),
        ],
    )
    linking_pb2_grpc.add_LinkingServiceServicer_to_server(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", SERVICE_NAME):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    if settings.reflection:
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
    credentials = server_credentials(settings)
    if credentials is None:
        port = server.add_insecure_port(settings.listen)
    else:
        port = server.add_secure_port(settings.listen, credentials)
    if port == 0:
        raise RuntimeError(f"cannot listen on {settings.listen}")
    probe = DatabaseProbe(engine, health_servicer, ("", SERVICE_NAME), settings.db_probe_interval)
    server.start()
    probe.start()
    return LinkingServer(server, port, health_servicer, service, engine, directory, probe)


def server_credentials(settings: LinkingSettings) -> grpc.ServerCredentials | None:
    """TLS from LINKING_TLS_CERT/KEY; with LINKING_TLS_CLIENT_CA, clients must present a
    certificate signed by that CA (mutual TLS). ``None``: plaintext (development, or
    LINKING_ALLOW_PLAINTEXT behind a mesh)."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    client_ca = settings.tls_client_ca.read_bytes() if settings.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(settings.tls_key.read_bytes(), settings.tls_cert.read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )

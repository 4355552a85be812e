"""The IdP's client of the linking service (``AutoAttach`` at "account confirmed"), and its
twin. The only IdP module that touches gRPC and the generated contract."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import grpc

from elk_proto.linking.v1 import linking_pb2 as pb
from elk_proto.linking.v1 import linking_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


def tls_credentials(
    ca: str, cert: str | None = None, key: str | None = None
) -> grpc.ChannelCredentials:
    """TLS to the linking service: its CA (PEM file), and our client certificate and key for
    mutual TLS. The target's host name must be in the server's certificate."""

    def read(path: str | None) -> bytes | None:
        return Path(path).read_bytes() if path else None

    return grpc.ssl_channel_credentials(
        root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert)
    )


class GrpcLinkingClient:
    def __init__(
        self,
        target: str,
        mint_token: Callable[[], str],
        timeout: float = 3.0,
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self._channel = (
            grpc.secure_channel(target, credentials)
            if credentials is not None
            else grpc.insecure_channel(target)
        )
        self._stub = pb_grpc.LinkingServiceStub(self._channel)
        self._mint = mint_token
        self._timeout = timeout
        self._stream = None  # the events call in flight
        self._stopped = False

    def auto_attach(self, user) -> list[str]:
        request = pb.AutoAttachRequest(
            # One id per account: a retry (or a second registration step) attaches nothing twice.
            request_id=f"register-{user.id}"[:64],
            subject=user.id,
            family_name=user.family_name,
            given_name=user.given_name,
            middle_name=user.middle_name or "",
            region=user.region or "",
            confirmed_phones=[user.phone] if user.phone and user.phone_verified else [],
            confirmed_emails=[user.email] if user.email and user.email_verified else [],
        )
        try:
            response = self._stub.AutoAttach(
                request,
                timeout=self._timeout,
                metadata=(("authorization", f"Bearer {self._mint()}"),),
            )
        except grpc.RpcError as exc:
            log.warning("automatic attachment for %s failed: %s", user.id, exc.code())
            return []
        return [account.number for account in response.attached]

    def events(self, cursor: int, wait: float = 5.0) -> list:
        """Link events after ``cursor``: those ready now, waiting at most ``wait`` seconds."""
        from idp.services.link_events import LinkEvent

        names = {
            pb.EVENT_TYPE_ATTACHED: "attached",
            pb.EVENT_TYPE_DETACHED: "detached",
            pb.EVENT_TYPE_REATTACHED: "reattached",
        }
        found = []
        stream = self._stub.StreamEvents(
            pb.StreamEventsRequest(cursor=cursor),
            timeout=wait,
            metadata=(("authorization", f"Bearer {self._mint()}"),),
        )
        self._stream = stream
        if self._stopped:  # stop_events() ran before it could see this call
            stream.cancel()
        try:
            for e in stream:
                found.append(
                    LinkEvent(
                        e.cursor,
                        e.event_id,
                        names.get(e.type, "unknown"),
                        e.account_number,
                        e.subject,
                        e.previous_subject,
                    )
                )
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
        finally:
            self._stream = None
        return found

    def stop_events(self) -> None:
        """Cancel the ``events`` call in flight and any started later (from any thread), so a
        stopping consumer never waits out a long poll; the call raises ``CANCELLED``."""
        self._stopped = True
        stream = self._stream
        if stream is not None:
            stream.cancel()

    def close(self) -> None:
        self._channel.close()


class RecordingLinkingClient:
    """The twin (and the default when no linking service is configured)."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def auto_attach(self, user) -> list[str]:
        self.calls.append(user.id)
        return []

"""The IdP's client of the linking service, and its twin. The only IdP module that touches
gRPC and the generated contract.

``AutoAttach`` at "account confirmed" and ``StreamEvents`` run with the IdP's own token; the
cabinet's calls (``ListAccounts``, the attachment flow, ``DetachAccount``) with the token of
the person they act for, passed in by the caller. Failures of those become one domain error,
:class:`~idp.domain.errors.LinkingFailed`, carrying the ``google.rpc.ErrorInfo`` reason and
the ``retry-after`` trailer (contract: ``protos/linking/v1/linking.proto``, header comment).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from pathlib import Path

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from elk_common.logjson import METADATA_KEY, current_request_id, new_request_id
from elk_proto.linking.v1 import linking_pb2 as pb
from elk_proto.linking.v1 import linking_pb2_grpc as pb_grpc
from idp.adapters.metrics import ObservedLinkingCalls
from idp.domain import linking as dom
from idp.domain.errors import LinkingFailed

log = logging.getLogger(__name__)

SERVICE_TO_PB = {
    dom.HOME_INTERNET: pb.SERVICE_TYPE_HOME_INTERNET,
    dom.HOME_PHONE: pb.SERVICE_TYPE_HOME_PHONE,
}
SERVICE_FROM_PB = {value: key for key, value in SERVICE_TO_PB.items()}
STATE_FROM_PB = {
    pb.FLOW_STATE_CHOOSE_SERVICE: dom.CHOOSE_SERVICE,
    pb.FLOW_STATE_PROVE: dom.PROVE,
    pb.FLOW_STATE_ATTACHED: dom.ATTACHED,
    pb.FLOW_STATE_REATTACHED: dom.REATTACHED,
    pb.FLOW_STATE_REFUSED: dom.REFUSED,
    pb.FLOW_STATE_EXPIRED: dom.EXPIRED,
}
REFUSAL_FROM_PB = {
    pb.REFUSAL_REASON_PROOF_FAILED: dom.PROOF_FAILED,
    pb.REFUSAL_REASON_ACCOUNT_INACTIVE: dom.ACCOUNT_INACTIVE,
}
# Transport failures with no ErrorInfo: the service is not there (or not in time).
UNREACHABLE = {
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
}


def linking_error(exc: grpc.RpcError) -> LinkingFailed:
    """The domain error for a failed call: the ErrorInfo reason and ``retry-after``."""
    reason = None
    try:
        status = rpc_status.from_call(exc)
    except (ValueError, AttributeError):
        status = None
    for detail in status.details if status else ():
        info = error_details_pb2.ErrorInfo()
        if detail.Is(info.DESCRIPTOR):
            detail.Unpack(info)
            reason = info.reason
    if reason is None:
        code = exc.code() if hasattr(exc, "code") else None
        reason = "UNAVAILABLE" if code in UNREACHABLE else "INTERNAL"
    retry_after = None
    for key, value in (exc.trailing_metadata() or ()) if hasattr(exc, "trailing_metadata") else ():
        if key == "retry-after" and str(value).isdigit():
            retry_after = int(value)
    return LinkingFailed(reason, retry_after)


def _time(stamp) -> float | None:
    if not stamp.seconds and not stamp.nanos:
        return None
    return stamp.seconds + stamp.nanos / 1e9


def _account(message) -> dom.LinkedAccount:
    return dom.LinkedAccount(
        number=message.number,
        region=message.region,
        services=tuple(SERVICE_FROM_PB[s] for s in message.services if s in SERVICE_FROM_PB),
        attached_at=_time(message.attached_at),
    )


def _flow(message) -> dom.AttachmentFlow:
    return dom.AttachmentFlow(
        flow_id=message.flow_id,
        state=STATE_FROM_PB.get(message.state, dom.EXPIRED),
        service_type=SERVICE_FROM_PB.get(message.service_type),
        expires_at=_time(message.expires_at),
        account=_account(message.account) if message.HasField("account") else None,
        refusal_reason=REFUSAL_FROM_PB.get(message.refusal_reason),
    )


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


def _metadata(token: str) -> tuple[tuple[str, str], ...]:
    """The bearer token, and the request id of the HTTP request (or job) on whose behalf
    the call is made, so that the linking service's log lines of the RPC carry it too."""
    request_id = current_request_id() or new_request_id()
    return (("authorization", f"Bearer {token}"), (METADATA_KEY, request_id))


#: A linking service that was away (a restart, a deploy) is found again within about two
#: seconds; gRPC's default backoff grows to two minutes of UNAVAILABLE after it is back.
CHANNEL_OPTIONS = (
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
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
            grpc.secure_channel(target, credentials, options=CHANNEL_OPTIONS)
            if credentials is not None
            else grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
        )
        # Counted at this edge (idp_linking_calls_total); the stream of events is a long poll.
        self._stub = pb_grpc.LinkingServiceStub(
            grpc.intercept_channel(self._channel, ObservedLinkingCalls())
        )
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
                metadata=_metadata(self._mint()),
            )
        except grpc.RpcError as exc:
            error = linking_error(exc)
            log.warning("automatic attachment for %s failed: %s", user.id, error.reason)
            raise error from None
        return [account.number for account in response.attached]

    # --- for a signed-in person (scope ``linking``, the person's own token) ----------------

    def _call(self, method: str, request, token: str):
        try:
            return getattr(self._stub, method)(
                request,
                timeout=self._timeout,
                metadata=_metadata(token),
            )
        except grpc.RpcError as exc:
            error = linking_error(exc)
            log.warning("linking %s failed: %s (%s)", method, error.reason, exc.code())
            raise error from None

    def list_accounts(self, token: str) -> list[dom.LinkedAccount]:
        response = self._call("ListAccounts", pb.ListAccountsRequest(), token)
        return [_account(a) for a in response.accounts]

    def start_attachment(
        self,
        token: str,
        request_id: str,
        region: str,
        *,
        account_number: str | None = None,
        phone_number: str | None = None,
        service_login: str | None = None,
        service_type: str | None = None,
    ) -> dom.AttachmentFlow:
        request = pb.StartAttachmentRequest(request_id=request_id, region=region)
        if account_number is not None:
            request.account_number = account_number
        elif phone_number is not None:
            request.phone_number = phone_number
        elif service_login is not None:
            request.service_login = service_login
        if service_type:
            request.service_type = SERVICE_TO_PB[service_type]
        return _flow(self._call("StartAttachment", request, token))

    def choose_service(
        self, token: str, request_id: str, flow_id: str, service_type: str
    ) -> dom.AttachmentFlow:
        request = pb.ChooseServiceRequest(
            request_id=request_id, flow_id=flow_id, service_type=SERVICE_TO_PB[service_type]
        )
        return _flow(self._call("ChooseService", request, token))

    def prove_service(
        self,
        token: str,
        request_id: str,
        flow_id: str,
        *,
        login: str | None = None,
        password: str | None = None,
        phone_number: str | None = None,
        pin: str | None = None,
    ) -> dom.AttachmentFlow:
        request = pb.ProveServiceRequest(request_id=request_id, flow_id=flow_id)
        if phone_number is not None:
            request.home_phone.CopyFrom(pb.HomePhoneProof(phone_number=phone_number, pin=pin or ""))
        else:
            request.home_internet.CopyFrom(
                pb.HomeInternetProof(login=login or "", password=password or "")
            )
        return _flow(self._call("ProveService", request, token))

    def get_attachment(self, token: str, flow_id: str) -> dom.AttachmentFlow:
        request = pb.GetAttachmentRequest(flow_id=flow_id)
        return _flow(self._call("GetAttachment", request, token))

    def detach_account(self, token: str, request_id: str, account_number: str) -> None:
        request = pb.DetachAccountRequest(request_id=request_id, account_number=account_number)
        self._call("DetachAccount", request, token)

    # --- the IdP's own calls ---------------------------------------------------------------

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
            metadata=_metadata(self._mint()),
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
    """The twin (and the default when no linking service is configured): records every call
    as ``(method, args)`` in ``calls`` and keeps flows in memory. ``proofs`` maps
    ``(login, password)`` or ``(phone, pin)`` to the account they prove; ``failure``, when
    set, is raised by the next cabinet call (then cleared). ``auto_found`` maps a subject to
    the numbers ``auto_attach`` answers (it attaches them); ``auto_failure``, when set, is
    raised by every ``auto_attach`` until cleared (the service away)."""

    def __init__(self) -> None:
        self.calls: list = []
        self.accounts: dict[str, list[dom.LinkedAccount]] = {}
        self.proofs: dict[tuple[str, str], dom.LinkedAccount] = {}
        self.flows: dict[str, dom.AttachmentFlow] = {}
        self.failure: LinkingFailed | None = None
        self.auto_found: dict[str, list[dom.LinkedAccount]] = {}
        self.auto_failure: LinkingFailed | None = None
        self._auto_done: dict[str, list[str]] = {}
        self._owner: dict[str, str] = {}

    def auto_attach(self, user) -> list[str]:
        self.calls.append(("auto_attach", user.id))
        if self.auto_failure is not None:
            raise self.auto_failure
        if user.id not in self._auto_done:  # the request id's first answer, as the service
            found = self.auto_found.get(user.id, [])
            self.accounts.setdefault(user.id, []).extend(found)
            self._auto_done[user.id] = [a.number for a in found]
        return list(self._auto_done[user.id])

    @staticmethod
    def subject(token: str) -> str:
        """The ``sub`` of a JWT (unverified: a twin trusts its caller), else the token."""
        try:
            payload = token.split(".")[1]
            return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"]
        except (IndexError, ValueError, KeyError):
            return token

    def _record(self, method: str, token: str, *args):
        token = self.subject(token)
        self.calls.append((method, token, *args))
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure

    def list_accounts(self, token: str) -> list[dom.LinkedAccount]:
        self._record("list_accounts", token)
        return list(self.accounts.get(self.subject(token), ()))

    def start_attachment(self, token, request_id, region, *, service_type=None, **lookup):
        self._record("start_attachment", token, request_id, region, lookup, service_type)
        flow_id = f"flow-{len(self.flows) + 1}"
        state = dom.PROVE if lookup.get("service_login") else dom.CHOOSE_SERVICE
        flow = dom.AttachmentFlow(flow_id, state, service_type=service_type)
        self.flows[flow_id] = flow
        self._owner[flow_id] = self.subject(token)
        return flow

    def _own(self, token: str, flow_id: str) -> dom.AttachmentFlow:
        if flow_id not in self.flows or self._owner[flow_id] != self.subject(token):
            raise LinkingFailed("FLOW_NOT_FOUND")
        return self.flows[flow_id]

    def choose_service(self, token, request_id, flow_id, service_type):
        self._record("choose_service", token, request_id, flow_id, service_type)
        flow = self._own(token, flow_id)
        if flow.state != dom.CHOOSE_SERVICE:
            raise LinkingFailed("FLOW_STATE")
        self.flows[flow_id] = dom.AttachmentFlow(flow_id, dom.PROVE, service_type=service_type)
        return self.flows[flow_id]

    def prove_service(self, token, request_id, flow_id, **proof):
        shown = {k: v for k, v in proof.items() if k not in ("password", "pin")}
        self._record("prove_service", token, request_id, flow_id, shown)
        flow = self._own(token, flow_id)
        if flow.state != dom.PROVE:
            raise LinkingFailed("FLOW_STATE")
        key = (
            proof.get("login") or proof.get("phone_number") or "",
            proof.get("password") or proof.get("pin") or "",
        )
        account = self.proofs.get(key)
        if account is None:
            result = dom.AttachmentFlow(
                flow_id, dom.REFUSED, flow.service_type, refusal_reason=dom.PROOF_FAILED
            )
        else:
            self.accounts.setdefault(self.subject(token), []).append(account)
            result = dom.AttachmentFlow(flow_id, dom.ATTACHED, flow.service_type, account=account)
        self.flows[flow_id] = result
        return result

    def get_attachment(self, token, flow_id):
        self._record("get_attachment", token, flow_id)
        return self._own(token, flow_id)

    def detach_account(self, token, request_id, account_number):
        self._record("detach_account", token, request_id, account_number)
        sub = self.subject(token)
        held = self.accounts.get(sub, [])
        if not any(a.number == account_number for a in held):
            raise LinkingFailed("ACCOUNT_NOT_ATTACHED")
        self.accounts[sub] = [a for a in held if a.number != account_number]

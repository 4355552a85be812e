"""The gRPC servicer: convert the request, call one use case, convert the answer back."""

from __future__ import annotations

import time

from elk_proto.linking.v1 import linking_pb2 as pb
from elk_proto.linking.v1 import linking_pb2_grpc as pb_grpc
from linking_service import convert
from linking_service.domain import InternetProof, InvalidArgument, LookupKind, PhoneProof
from linking_service.interceptors import current_principal


class LinkingServicer(pb_grpc.LinkingServiceServicer):
    def __init__(self, service, flows, idempotency, poll_interval: float = 0.5) -> None:
        self._service = service
        self._flows = flows
        self._idempotency = idempotency
        self._poll = poll_interval

    def _once(self, name: str, request, response_cls, call):
        """Run a mutating call at most once per (caller, request_id)."""
        subject = current_principal().subject
        payload = request.SerializeToString(deterministic=True)
        raw = self._idempotency.run(
            subject, request.request_id, name, payload, lambda: call().SerializeToString()
        )
        return response_cls.FromString(raw)

    # --- customers (scope `linking`) ------------------------------------------------------------

    def ListAccounts(self, request, context):
        return convert.accounts(self._service.accounts_of(current_principal().subject))

    def StartAttachment(self, request, context):
        which = request.WhichOneof("lookup")
        if which is None:
            raise InvalidArgument("give an account number, a phone number or a service login")
        kind = {
            "account_number": LookupKind.ACCOUNT_NUMBER,
            "phone_number": LookupKind.PHONE,
            "service_login": LookupKind.SERVICE_LOGIN,
        }[which]
        service_type = convert.service_type(request.service_type, required=False)
        return self._once(
            "StartAttachment",
            request,
            pb.AttachmentFlow,
            lambda: convert.flow(
                self._flows.start(
                    current_principal().subject,
                    request.region,
                    kind,
                    getattr(request, which),
                    service_type,
                )
            ),
        )

    def ChooseService(self, request, context):
        service_type = convert.service_type(request.service_type)
        return self._once(
            "ChooseService",
            request,
            pb.AttachmentFlow,
            lambda: convert.flow(
                self._flows.choose(current_principal().subject, request.flow_id, service_type)
            ),
        )

    def ProveService(self, request, context):
        which = request.WhichOneof("proof")
        if which == "home_internet":
            proof = InternetProof(request.home_internet.login, request.home_internet.password)
        elif which == "home_phone":
            proof = PhoneProof(request.home_phone.phone_number, request.home_phone.pin)
        else:
            raise InvalidArgument("give a Home Internet or a Home Phone proof")
        return self._once(
            "ProveService",
            request,
            pb.AttachmentFlow,
            lambda: convert.flow(
                self._flows.prove(current_principal().subject, request.flow_id, proof)
            ),
        )

    def GetAttachment(self, request, context):
        return convert.flow(self._flows.get(current_principal().subject, request.flow_id))

    def DetachAccount(self, request, context):
        def call():
            self._service.detach(current_principal().subject, request.account_number)
            return pb.DetachAccountResponse()

        return self._once("DetachAccount", request, pb.DetachAccountResponse, call)

    # --- the identity provider (scope `linking:auto`) ------------------------------------------

    def AutoAttach(self, request, context):
        return self._once(
            "AutoAttach",
            request,
            pb.AutoAttachResponse,
            lambda: pb.AutoAttachResponse(
                attached=[
                    convert.account(a)
                    for a in self._service.auto_attach(
                        request.subject,
                        request.family_name,
                        request.given_name,
                        request.middle_name or None,
                        request.region,
                        list(request.confirmed_phones),
                        list(request.confirmed_emails),
                    )
                ]
            ),
        )

    def StreamEvents(self, request, context):
        cursor = max(0, request.cursor)
        while context.is_active():
            events = self._service.events_after(cursor)
            for event in events:
                yield convert.event(event)
                cursor = event.cursor
            if not events:
                # End cleanly (status OK) a little before the caller's deadline, so a caught-up
                # consumer sees a finished stream rather than DEADLINE_EXCEEDED.
                remaining = context.time_remaining()
                if remaining is not None and remaining <= self._poll + 0.3:
                    return
                time.sleep(self._poll)

    # --- internal services (scope `linking:read`) ----------------------------------------------

    def GetAccountOwner(self, request, context):
        subject, attached_at = self._service.owner_of(request.account_number)
        return pb.GetAccountOwnerResponse(
            subject=subject or "", attached_at=convert.timestamp(attached_at)
        )

    def ListIdentityAccounts(self, request, context):
        if not request.subject:
            raise InvalidArgument("subject is required")
        return convert.accounts(self._service.accounts_of(request.subject))

"""What the IdP knows of billing accounts and attachment flows, as the linking service
reports them (``protos/linking/v1/linking.proto``), in plain Python for services and pages.

Service types and flow states are short strings; the gRPC adapter converts the contract's
enums to them and back, so nothing outside :mod:`idp.adapters.linking_grpc` sees protobuf.
"""

from __future__ import annotations

from dataclasses import dataclass

HOME_INTERNET = "home_internet"
HOME_PHONE = "home_phone"
SERVICE_TYPES = (HOME_INTERNET, HOME_PHONE)

# Flow states (step 2, step 3, the terminal step 4 outcomes, expiry).
CHOOSE_SERVICE = "choose_service"
PROVE = "prove"
ATTACHED = "attached"
REATTACHED = "reattached"
REFUSED = "refused"
EXPIRED = "expired"
FINISHED = (ATTACHED, REATTACHED, REFUSED, EXPIRED)

# Refusal reasons (say nothing about accounts the caller could not prove).
PROOF_FAILED = "proof_failed"
ACCOUNT_INACTIVE = "account_inactive"


@dataclass(frozen=True)
class LinkedAccount:
    """A billing account attached to the person: 12 digits, its region and services."""

    number: str
    region: str
    services: tuple[str, ...] = ()
    attached_at: float | None = None


@dataclass(frozen=True)
class AttachmentFlow:
    """One attachment flow of the linking service (its four-step wizard)."""

    flow_id: str
    state: str
    service_type: str | None = None
    expires_at: float | None = None
    account: LinkedAccount | None = None
    refusal_reason: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

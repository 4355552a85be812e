"""Pure rules of the linking service: billing accounts, attachment flows, errors.

The attachment flow (the seed's four-step wizard) is a state machine::

    stateDiagram-v2
        [*] --> CHOOSE_SERVICE: StartAttachment (number or phone)
        [*] --> PROVE: StartAttachment (service login)
        CHOOSE_SERVICE --> PROVE: ChooseService
        PROVE --> VERIFYING: ProveService (attempt reserved, one proof per flow)
        VERIFYING --> ATTACHED: proof ok, account was free (or already the caller's)
        VERIFYING --> REATTACHED: proof ok, account moved from another identity
        VERIFYING --> REFUSED: proof failed / account inactive
        VERIFYING --> PROVE: the check itself failed (not the caller's fault)
        CHOOSE_SERVICE --> EXPIRED
        PROVE --> EXPIRED
        VERIFYING --> EXPIRED

VERIFYING is entered by a compare-and-swap, so of parallel proofs of one flow only one is
verified; the others find the flow no longer in PROVE. Callers see it as PROVE.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from elk_common.contacts import normalize_phone
from elk_common.errors import InvalidValue


class ServiceType(enum.StrEnum):
    HOME_INTERNET = "internet"
    HOME_PHONE = "phone"


class FlowState(enum.StrEnum):
    CHOOSE_SERVICE = "choose_service"
    PROVE = "prove"
    VERIFYING = "verifying"
    ATTACHED = "attached"
    REATTACHED = "reattached"
    REFUSED = "refused"
    EXPIRED = "expired"


TERMINAL = frozenset(
    {FlowState.ATTACHED, FlowState.REATTACHED, FlowState.REFUSED, FlowState.EXPIRED}
)

TRANSITIONS: dict[FlowState, frozenset[FlowState]] = {
    FlowState.CHOOSE_SERVICE: frozenset({FlowState.PROVE, FlowState.EXPIRED}),
    FlowState.PROVE: frozenset({FlowState.VERIFYING, FlowState.EXPIRED}),
    FlowState.VERIFYING: frozenset(
        {
            FlowState.ATTACHED,
            FlowState.REATTACHED,
            FlowState.REFUSED,
            FlowState.PROVE,
            FlowState.EXPIRED,
        }
    ),
}


class RefusalReason(enum.StrEnum):
    PROOF_FAILED = "proof_failed"
    ACCOUNT_INACTIVE = "account_inactive"


class LookupKind(enum.StrEnum):
    ACCOUNT_NUMBER = "account_number"
    PHONE = "phone"
    SERVICE_LOGIN = "service_login"


@dataclass(frozen=True)
class BillingService:
    kind: ServiceType
    login: str | None = None  # Home Internet service login
    phone: str | None = None  # Home Phone number, E.164


@dataclass(frozen=True)
class BillingAccount:
    number: str
    region: str
    family_name: str
    given_name: str
    middle_name: str | None
    phones: tuple[str, ...] = ()
    emails: tuple[str, ...] = ()
    status: str = "active"
    services: tuple[BillingService, ...] = field(default_factory=tuple)

    @property
    def active(self) -> bool:
        return self.status == "active"


# --- errors, each mapped once to a gRPC status in linking_service.errors -------------------


class LinkingError(Exception):
    reason = "INTERNAL"

    def __init__(self, message: str = "", reason: str | None = None) -> None:
        super().__init__(message or self.__class__.__name__)
        if reason:
            self.reason = reason


class InvalidArgument(LinkingError):
    reason = "INVALID_REQUEST"


class NotFound(LinkingError):
    reason = "FLOW_NOT_FOUND"


class FailedPrecondition(LinkingError):
    reason = "FLOW_STATE"


class TooManyAttempts(LinkingError):
    reason = "TOO_MANY_ATTEMPTS"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after}s")
        self.retry_after = retry_after


class ConcurrentChange(LinkingError):
    reason = "CONCURRENT_CHANGE"


class PermissionDenied(LinkingError):
    reason = "SCOPE_MISSING"


class Unauthenticated(LinkingError):
    reason = "TOKEN_INVALID"


# --- input rules ----------------------------------------------------------------------------

_ACCOUNT_NUMBER = re.compile(r"[0-9]{12}")


def check_account_number(value: str) -> str:
    """Exactly 12 ASCII digits (no Unicode digits, no spaces)."""
    if not isinstance(value, str) or not _ACCOUNT_NUMBER.fullmatch(value):
        raise InvalidArgument("an account number is exactly 12 digits", "INVALID_ACCOUNT_NUMBER")
    return value


def check_transition(current: FlowState, target: FlowState) -> None:
    if target not in TRANSITIONS.get(current, frozenset()):
        raise FailedPrecondition(f"a flow in state {current} cannot go to {target}")


# --- what the use cases return ---------------------------------------------------------------


@dataclass(frozen=True)
class InternetProof:
    login: str
    password: str


@dataclass(frozen=True)
class PhoneProof:
    phone: str
    pin: str


@dataclass(frozen=True)
class AttachedAccount:
    number: str
    region: str
    attached_at: int | None
    services: tuple[ServiceType, ...] = ()


@dataclass(frozen=True)
class Flow:
    id: str
    state: FlowState
    service_type: ServiceType | None
    expires_at: int
    account: AttachedAccount | None = None
    refusal_reason: RefusalReason | None = None


class EventType(enum.StrEnum):
    ATTACHED = "attached"
    DETACHED = "detached"
    REATTACHED = "reattached"


@dataclass(frozen=True)
class LinkEvent:
    cursor: int
    event_id: str
    type: EventType
    account_number: str
    subject: str | None
    previous_subject: str | None
    occurred_at: int


def phone_number(value: str) -> str:
    """Any Russian number, mobile or landline (Home Phone), in E.164."""
    try:
        return normalize_phone(value, mobile_only=False)
    except InvalidValue:
        raise InvalidArgument("not a phone number", "INVALID_PHONE") from None


def service_login(value: str) -> str:
    """A Home Internet service login: 3-64 ASCII letters, digits and ``._@-``, lower-cased."""
    value = (value or "").strip().lower()
    if not 3 <= len(value) <= 64 or not all(
        c.isascii() and (c.isalnum() or c in "._@-") for c in value
    ):
        raise InvalidArgument("not a service login", "INVALID_LOGIN")
    return value

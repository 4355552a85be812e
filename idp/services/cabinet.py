"""The cabinet's billing-account use cases: the main page's accounts, the four-step
attachment wizard and detaching, over the linking service (``LinkingClient``).

Every call acts for one signed-in person with an access token minted for them by
:meth:`TokenService.customer_token` (``aud`` the linking service, scope ``linking``, a minute
long, the SSO session's ``sid``): the IdP never lends its own token to a customer. Input is
checked here before anything is sent, so a page can say which field is wrong; the linking
service's own refusals arrive as :class:`~idp.domain.errors.LinkingFailed`.

The wizard (help pages, «Привязка лицевого счета»), over the service's flow::

    step 1 «Данные лицевого счёта»      start()   → CHOOSE_SERVICE, or PROVE for a service login
    step 2 «Выбор услуги для привязки»  choose()  → PROVE
    step 3 «Данные услуги»              prove()   → ATTACHED | REATTACHED | REFUSED
    step 4 «Результат»

A refused proof ends the service's flow; :meth:`prove` given the step-1 data starts a new
flow with the same data and service and proves again, so the person only corrects the proof.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

from elk_common.contacts import normalize_phone
from elk_common.errors import InvalidValue
from idp.domain import linking as dom
from idp.domain.errors import ValidationError
from idp.domain.regions import check_region
from idp.ports import LinkingClient
from idp.services.tokens import TokenService

ACCOUNT_NUMBER = re.compile(r"^\d{12}$")
LOOKUP_KINDS = ("account_number", "phone_number", "service_login")


@dataclass(frozen=True)
class Person:
    """Who the cabinet acts for: the account and its SSO session."""

    user_id: str
    sid: str | None = None


@dataclass(frozen=True)
class Lookup:
    """Step 1, checked: the region and exactly one way to find the account."""

    region: str
    kind: str
    value: str
    service_type: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> Lookup | None:
        try:
            return cls(**data) if data else None
        except TypeError:
            return None


def parse_lookup(
    region: str, account_number: str, phone_number: str, service_login: str, service_type: str
) -> Lookup:
    """Check step 1; :class:`ValidationError` names the field (``field``) that is wrong."""
    region = check_region(region)
    given = {
        "account_number": account_number.strip(),
        "phone_number": phone_number.strip(),
        "service_login": service_login.strip(),
    }
    filled = [kind for kind in LOOKUP_KINDS if given[kind]]
    if len(filled) != 1:
        raise ValidationError("give exactly one of number, phone, login", "lookup")
    kind = filled[0]
    value = given[kind]
    if kind == "account_number":
        value = re.sub(r"[\s-]", "", value)
        if not ACCOUNT_NUMBER.match(value):
            raise ValidationError("12 digits", "account_number")
        return Lookup(region, kind, value)
    if kind == "phone_number":
        try:
            value = normalize_phone(value, mobile_only=False)
        except InvalidValue:
            raise ValidationError("not a phone number", "phone_number") from None
        return Lookup(region, kind, value)
    if len(value) > 64:
        raise ValidationError("login too long", "service_login")
    if service_type not in dom.SERVICE_TYPES:
        raise ValidationError("choose the login's service", "service_type")
    return Lookup(region, kind, value, service_type)


class CabinetService:
    """The main page's accounts, the attachment wizard and detach, for one person a call."""

    def __init__(
        self,
        linking: Callable[[], LinkingClient],
        tokens: TokenService,
        audience: str,
        ttl: int = 60,
    ) -> None:
        # A callable: the composition root (and tests) may swap the client after building.
        self._linking = linking
        self._tokens = tokens
        self._audience = audience
        self._ttl = ttl

    def _token(self, person: Person) -> str:
        return self._tokens.customer_token(
            person.user_id, "linking", self._audience, sid=person.sid, ttl=self._ttl
        )

    @staticmethod
    def _request_id() -> str:
        return uuid.uuid4().hex

    def accounts(self, person: Person) -> list[dom.LinkedAccount]:
        """The person's attached billing accounts, by number."""
        found = self._linking().list_accounts(self._token(person))
        return sorted(found, key=lambda account: account.number)

    def start(self, person: Person, lookup: Lookup) -> dom.AttachmentFlow:
        """Step 1 «Данные лицевого счёта»: a new flow."""
        return self._linking().start_attachment(
            self._token(person),
            self._request_id(),
            lookup.region,
            service_type=lookup.service_type,
            **{lookup.kind: lookup.value},
        )

    def choose(self, person: Person, flow_id: str, service_type: str) -> dom.AttachmentFlow:
        """Step 2 «Выбор услуги для привязки»."""
        if service_type not in dom.SERVICE_TYPES:
            raise ValidationError("choose a service", "service_type")
        return self._linking().choose_service(
            self._token(person), self._request_id(), flow_id, service_type
        )

    def flow(self, person: Person, flow_id: str) -> dom.AttachmentFlow:
        return self._linking().get_attachment(self._token(person), flow_id)

    def restart(
        self, person: Person, lookup: Lookup, service_type: str | None
    ) -> dom.AttachmentFlow:
        """A new flow from the same step-1 data, with the same service chosen (``Назад``
        from a refusal, or another try after one)."""
        flow = self.start(person, lookup)
        if flow.state == dom.CHOOSE_SERVICE and service_type:
            flow = self.choose(person, flow.flow_id, service_type)
        return flow

    def prove(
        self,
        person: Person,
        flow: dom.AttachmentFlow,
        lookup: Lookup | None,
        *,
        login: str = "",
        password: str = "",
        phone_number: str = "",
        pin: str = "",
    ) -> dom.AttachmentFlow:
        """Step 3 «Данные услуги»: Home Internet's login and password, or Home Phone's number
        and PIN, as the flow's service asks. A flow refused before is started anew first."""
        if flow.service_type == dom.HOME_PHONE:
            if not phone_number.strip():
                raise ValidationError("phone required", "proof_phone")
            if not pin:
                raise ValidationError("PIN required", "pin")
            try:
                phone = normalize_phone(phone_number, mobile_only=False)
            except InvalidValue:
                raise ValidationError("not a phone number", "proof_phone") from None
            proof = {"phone_number": phone, "pin": pin}
        else:
            if not login.strip():
                raise ValidationError("login required", "login")
            if not password:
                raise ValidationError("password required", "password")
            proof = {"login": login.strip(), "password": password}
        if flow.state == dom.REFUSED and lookup is not None:
            flow = self.restart(person, lookup, flow.service_type)
        return self._linking().prove_service(
            self._token(person), self._request_id(), flow.flow_id, **proof
        )

    def detach(self, person: Person, account_number: str) -> None:
        """Detach one of the person's accounts."""
        if not ACCOUNT_NUMBER.match(account_number):
            raise ValidationError("12 digits", "account_number")
        self._linking().detach_account(self._token(person), self._request_id(), account_number)

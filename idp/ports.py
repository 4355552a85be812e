"""Ports: the outside dependencies of the identity provider, as Protocols.

Each has a real adapter and a twin for development and tests, chosen by configuration in
:func:`idp.create_app` (the composition root) and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from idp.domain.linking import AttachmentFlow, LinkedAccount
from idp.domain.social import SocialProfile


class StoreUnavailable(RuntimeError):
    """The ephemeral store cannot be reached. Callers fail closed (HTTP 503)."""


class EphemeralStore(Protocol):
    """Short-lived shared state: counters, one-time markers, interactions.

    Every method is atomic with respect to other callers of the same store, including other
    processes when the store is shared (Redis). Values are strings; TTLs are seconds.
    """

    def get(self, key: str) -> str | None: ...

    def set(self, key: str, value: str, ttl: int) -> None: ...

    def add(self, key: str, value: str, ttl: int) -> bool:
        """Set ``key`` only if absent; True when this call created it."""
        ...

    def take(self, key: str) -> str | None:
        """Get and delete ``key`` in one step: at most one caller receives the value."""
        ...

    def delete(self, key: str) -> None: ...

    def incr(self, key: str, ttl: int) -> int:
        """Increment a counter; the TTL starts when the counter is created."""
        ...

    def ttl(self, key: str) -> int:
        """Seconds left before ``key`` expires; 0 when absent."""
        ...

    def ping(self) -> None:
        """Raise :class:`StoreUnavailable` when the store cannot serve requests."""
        ...


class Waker(Protocol):
    """Wakes the outbox worker after a commit that added rows, so that an SMS code is on its
    way within moments instead of at the next slow poll. Best effort: the worker polls too.
    ``channel`` names a lane of the worker (``messages``, ``logout``)."""

    def wake(self, channel: str) -> None: ...

    def wait(self, channel: str, timeout: float) -> bool:
        """Block until woken or ``timeout`` seconds passed; True when woken."""
        ...


class LogoutNotifier(Protocol):
    """Delivers OpenID Connect Back-Channel Logout tokens to relying parties."""

    def send(self, uri: str, logout_token: str) -> bool:
        """POST ``logout_token`` to ``uri``; True when the RP answered 200 or 204."""
        ...


class DeliveryFailed(RuntimeError):
    """A message could not be handed to the SMS gateway or the mail server. Callers show a
    clear error and keep nothing half-created."""


class MessageRejected(DeliveryFailed):
    """The gateway or mail server is up but refused this one message (a 4xx, a refused
    recipient): sending it again will not help, and the channel is not down."""


class SmsSender(Protocol):
    """Sends one SMS text to an E.164 number (the company's SMS gateway). ``message_id`` is
    the outbox row's id: the same id twice is the same message (an idempotency key)."""

    def send(self, phone: str, text: str, message_id: str | None = None) -> None: ...


class EmailSender(Protocol):
    """Sends one e-mail (plain text, optional HTML alternative); ``message_id`` becomes the
    RFC 5322 ``Message-ID``, so a copy sent twice is recognisably one message."""

    def send(
        self,
        to: str,
        subject: str,
        text: str,
        html: str | None = None,
        message_id: str | None = None,
    ) -> None: ...


class CaptchaRenderer(Protocol):
    """Draws a captcha image (PNG bytes) for the given text."""

    def render(self, text: str) -> bytes: ...


class LinkingClient(Protocol):
    """The linking service, as the IdP uses it (``protos/linking/v1/linking.proto``).

    ``auto_attach`` runs with the IdP's own ``linking:auto`` token. Every other method acts
    for a signed-in person and takes ``token``: an access token minted for that person
    (``aud`` the linking service, scope ``linking``) by :meth:`TokenService.customer_token`,
    never the IdP's own. Those methods raise :class:`idp.domain.errors.LinkingFailed` with
    the contract's ErrorInfo reason (``UNAVAILABLE`` when the service cannot be reached).
    Mutating calls take a ``request_id``: the same id repeats the first answer.
    """

    def auto_attach(self, user) -> list[str]:
        """Ask for automatic attachment for a newly confirmed account; the attached account
        numbers. One request id per account (``register-<sub>``): a repeat answers the first
        answer. Raises :class:`LinkingFailed` when the service did not answer
        (:class:`idp.services.auto_attach.AutoAttachService` keeps the search pending)."""
        ...

    def list_accounts(self, token: str) -> list[LinkedAccount]: ...

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
    ) -> AttachmentFlow:
        """Step 1: exactly one of ``account_number``, ``phone_number``, ``service_login``
        (which needs ``service_type``)."""
        ...

    def choose_service(
        self, token: str, request_id: str, flow_id: str, service_type: str
    ) -> AttachmentFlow: ...

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
    ) -> AttachmentFlow:
        """Step 3: ``login`` + ``password`` (Home Internet) or ``phone_number`` + ``pin``."""
        ...

    def get_attachment(self, token: str, flow_id: str) -> AttachmentFlow: ...

    def detach_account(self, token: str, request_id: str, account_number: str) -> None: ...


class SocialProvider(Protocol):
    """One social network's sign-in (``idp.adapters.social``), one adapter per provider.

    The IdP's social service makes ``state``, ``nonce`` and the PKCE ``code_verifier``, keeps
    them bound to the person's browser and to this provider, and checks ``state`` before
    calling :meth:`complete`. Every network call has a timeout. Failures raise
    :class:`idp.domain.social.SocialError`.
    """

    name: str  # one of idp.domain.social.PROVIDER_NAMES

    def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        """Where to send the browser (PKCE S256 and nonce where the provider supports them)."""
        ...

    def complete(
        self,
        params: Mapping[str, str],
        *,
        redirect_uri: str,
        state: str,
        nonce: str,
        code_verifier: str,
    ) -> SocialProfile:
        """The callback's query ``params`` (``code``, provider error keys, VK ID's
        ``device_id``…) → the code exchanged and the profile fetched and normalised. Provider
        errors in ``params`` (the person denied access) raise ``SocialError("denied")``."""
        ...


class Metrics(Protocol):
    """What the use cases count for operators (exposed to Prometheus by
    :class:`idp.adapters.metrics.PrometheusMetrics`; recorded by its twin in tests). Labels are
    small closed sets, never a person, a client's free text or a path."""

    def sign_in(self, method: str, result: str) -> None:
        """A sign-in attempt: ``method`` (``password``…), ``result`` (``success``,
        ``failure``, ``locked``, ``throttled``)."""
        ...

    def lockout(self) -> None:
        """An account was locked after too many failed sign-ins."""
        ...

    def code_sent(self, channel: str) -> None:
        """A one-time code (``sms``) or link (``email``) was handed to the gateway."""
        ...

    def delivery(self, kind: str, outcome: str) -> None:
        """An outbox row's send: ``kind`` (``sms``, ``email``, ``logout``), ``outcome``
        (``sent``, ``retry``, ``dead``)."""
        ...

    def outbox_backlog(self, lane: str, pending: int, oldest_age: float) -> None:
        """Pending outbox rows of a worker lane and the age of the oldest, seconds."""
        ...

    def token_issued(self, grant_type: str) -> None:
        """The token endpoint answered 200 for ``grant_type``."""
        ...

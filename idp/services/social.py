"""Social sign-in: the round trip to a provider, then sign-in, sign-up, or a proven link.

One round trip is a record in the ephemeral store, keyed by its ``state`` (256 bits), bound to
the browser that started it (a random key in that browser's session) and to the provider, and
carrying the nonce, the PKCE verifier and the portal's pending authorization request as a
:class:`~idp.services.carried_authorization.CarriedAuthorization` (not the interaction's handle,
which expires after a quarter of an hour: the sign-up and the proof may take longer). The
callback takes the record once: a missing, foreign, replayed or other-provider ``state`` is
refused before the provider is asked anything (the mix-up defence of RFC 9700 §4.4 and the
CSRF defence of RFC 6749 §10.12).

    stateDiagram-v2
        [*] --> started: begin (sign-in page, «Привязать», or a re-sign-in while signed in)
        started --> returned: callback, state taken once, profile fetched
        started --> [*]: expired, foreign or replayed state (refused)
        returned --> signed_in: (provider, subject) linked to an account
        returned --> linked: started while signed in (link another account)
        returned --> signed_in: re-sign-in (``reauth_user``): only an identity of that account
        returned --> signing_up: unknown identity, no account holds its contact
        returned --> proof_needed: the provider's contact belongs to an account
        signing_up --> [*]: the registration flow carries it; linked when the account is created
        proof_needed --> linked: the account proved (idp.services.social_proof)
        linked --> [*]
        signed_in --> [*]

``started`` and ``returned`` live in the ephemeral store (``social:state:*``); ``signing_up``
is a pending profile (``social:pending:*``) that the registration flow takes into its own
stored state machine (:mod:`idp.services.registration`); ``proof_needed`` → ``linked`` is a
stored flow of its own, with its diagram, in :mod:`idp.services.social_proof`.

**Pre-account hijacking (checklist item 40).** Nothing is merged on an e-mail or phone, even
one the provider says is verified. When the provider hands us a contact that an account
already holds, the person must prove that account (its password, a code sent to its
confirmed phone, or a link sent to its confirmed e-mail) before the identity is linked. Which
answer a person sees depends only on what they already proved to the provider: the "this
contact has an account" page is shown for a phone number (providers give only numbers they
confirmed) or an e-mail the provider asserts as verified. An e-mail the provider does not
vouch for goes to ordinary registration, whose answer is the same for a taken contact and a
free one (its owner is told by a message), so a social account made with somebody else's
address learns nothing.

**Audit seam.** Every link and unlink goes through :meth:`SocialService._link` and
:meth:`SocialService._unlink` (the registration flow and the proof flow reach ``_link``
through :meth:`SocialService.link_in_transaction`): the one place to record ``social.link`` /
``social.unlink`` in the same transaction.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.adapters.metrics_twin import NullMetrics
from idp.adapters.sql.models import SocialIdentity, User, Verification
from idp.domain.errors import Conflict, NotFound
from idp.domain.social import PROVIDER_NAMES, PROVIDERS, SocialError, SocialProfile
from idp.persistence import SocialIdentityStore, UnitOfWork
from idp.ports import EphemeralStore, Metrics, SocialProvider
from idp.services.audit import AuditService
from idp.services.carried_authorization import CarriedAuthorization, carried_by, carry
from idp.services.crypto import new_token
from idp.services.social_proof import SignedIn, new_proof_flow

ROUND_TRIP_TTL = 600  # seconds between the button and the provider's answer
PENDING_TTL = 3600  # seconds to fill in the registration form after the provider's answer
SOCIAL_ACR = "urn:elk:loa:1"


class AlreadyLinked(Conflict):
    """The social account is linked to another cabinet account."""


class LastSignInMethod(Conflict):
    """Unlinking would leave the account with no way to sign in."""


class NotThisAccount(Conflict):
    """A re-sign-in came back with a social account that is not linked to the account
    that asked for it."""


# --- outcomes of the callback -----------------------------------------------------------------


@dataclass(frozen=True)
class SignUp:
    pending: str  # the key of the pending profile, kept in the browser's session
    profile: SocialProfile
    authorization: CarriedAuthorization | None


@dataclass(frozen=True)
class ProofNeeded:
    flow: Verification
    authorization: CarriedAuthorization | None


@dataclass(frozen=True)
class Linked:
    user_id: str
    provider: str


def amr_for(provider: str) -> list[str]:
    """RFC 8176 ``fed`` (federated sign-in) plus the provider's name."""
    return ["fed", provider]


def _profile_dict(profile: SocialProfile) -> dict:
    data = asdict(profile)
    data.pop("raw", None)
    return data


def _profile_from(data: dict) -> SocialProfile:
    return SocialProfile(**{k: v for k, v in data.items() if k != "raw"})


def _display_name(profile: SocialProfile) -> str | None:
    name = " ".join(p for p in (profile.given_name, profile.family_name) if p)
    return name[:200] or None


class SocialService:
    def __init__(
        self,
        session: Session,
        uow: UnitOfWork,
        providers: Mapping[str, SocialProvider],
        identities: SocialIdentityStore,
        store: EphemeralStore,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
        audit: AuditService | None = None,
    ) -> None:
        self._audit = audit or AuditService.in_memory(clock)
        self._db = session
        self._uow = uow
        self._providers = dict(providers)
        self._identities = identities
        self._store = store
        self._clock = clock
        self._metrics = metrics or NullMetrics()

    def _now(self) -> int:
        return int(self._clock())

    def buttons(self) -> list[tuple[str, str, str]]:
        """``(name, label, display name)`` of the enabled providers, in the help pages' order."""
        return [p for p in PROVIDERS if p[0] in self._providers]

    def display_name(self, provider: str) -> str:
        return next((d for n, _, d in PROVIDERS if n == provider), provider)

    def _provider(self, name: str) -> SocialProvider:
        provider = self._providers.get(name)
        if provider is None:
            raise SocialError("config", f"provider {name!r} is not enabled")
        return provider

    # --- the round trip ---------------------------------------------------------------------

    def begin(
        self,
        provider: str,
        *,
        binding: str,
        redirect_uri: str,
        authorization: CarriedAuthorization | None = None,
        link_user: str | None = None,
        reauth_user: str | None = None,
    ) -> str:
        """Make state, nonce and PKCE verifier, bind them to ``binding`` (the browser) and the
        provider, and return the provider's authorization URL. ``authorization``: the portal's
        request that sent the person here, carried to the end of the sign-in. ``reauth_user``:
        a signed-in account signs in again (a fresh sign-in for «Персональная информация»,
        :mod:`idp.services.profile`); only that account's own identity is accepted back."""
        adapter = self._provider(provider)
        if not binding or len(binding) < 32:
            raise SocialError("state", "no browser binding")
        state, nonce, verifier = new_token(32), new_token(32), new_token(48)
        record = carry(
            {
                "provider": provider,
                "binding": binding,
                "nonce": nonce,
                "verifier": verifier,
                "link_user": link_user,
                "reauth_user": reauth_user,
            },
            authorization,
        )
        self._store.set(f"social:state:{state}", json.dumps(record), ROUND_TRIP_TTL)
        return adapter.authorization_url(
            redirect_uri=redirect_uri, state=state, nonce=nonce, code_verifier=verifier
        )

    def peek_authorization(
        self, params: Mapping[str, str], binding: str
    ) -> CarriedAuthorization | None:
        """The portal's request of this browser's round trip, to keep on an error page (never
        one of a round trip another browser started)."""
        state = params.get("state") or ""
        raw = self._store.get(f"social:state:{state}") if 0 < len(state) <= 128 else None
        record = json.loads(raw) if raw else {}
        if not binding or not hmac.compare_digest(record.get("binding", ""), binding):
            return None
        return carried_by(record)

    def _take_state(self, provider: str, params: Mapping[str, str], binding: str) -> dict:
        """The round trip's record, once. Refused: no state, an unknown or used one, one
        made for another browser or for another provider (mix-up)."""
        state = params.get("state") or ""
        if not state or len(state) > 128:
            raise SocialError("state", "missing state")
        key = f"social:state:{state}"
        raw = self._store.get(key)
        if raw is None:
            raise SocialError("state", "unknown, expired or used state")
        record = json.loads(raw)
        if not binding or not hmac.compare_digest(record["binding"], binding):
            raise SocialError("state", "state of another browser")
        if record["provider"] != provider:
            raise SocialError("state", "state made for another provider")
        if self._store.take(key) is None:
            raise SocialError("state", "state used meanwhile")
        record["state"] = state
        return record

    def finish(
        self,
        provider: str,
        params: Mapping[str, str],
        *,
        binding: str,
        redirect_uri: str,
        current_user: str | None = None,
    ) -> SignedIn | SignUp | ProofNeeded | Linked:
        """The callback: state checked, the provider asked, then what happens to the person.
        Counted as a sign-in by the provider's name: ``success`` when it signs somebody in,
        ``failure`` for any :class:`SocialError` (sign-up, proof and link are no sign-in yet)."""
        try:
            outcome = self._finish(provider, params, binding, redirect_uri, current_user)
        except SocialError:
            self._count(provider, "failure")
            raise
        if isinstance(outcome, SignedIn):
            self._count(provider, "success")
        return outcome

    def _count(self, provider: str, result: str) -> None:
        """A social sign-in's ``result`` by provider; a name that is no provider of ours (the
        callback's path is the person's input) is not a label."""
        if provider in PROVIDER_NAMES:
            self._metrics.sign_in(provider, result)

    def _finish(
        self,
        provider: str,
        params: Mapping[str, str],
        binding: str,
        redirect_uri: str,
        current_user: str | None,
    ) -> SignedIn | SignUp | ProofNeeded | Linked:
        record = self._take_state(provider, params, binding)
        adapter = self._provider(provider)
        profile = adapter.complete(
            params,
            redirect_uri=redirect_uri,
            state=record["state"],
            nonce=record["nonce"],
            code_verifier=record["verifier"],
        )
        if profile.provider != provider or not profile.subject:
            raise SocialError("bad_response", "profile of another provider")
        authorization = carried_by(record)
        if record.get("link_user"):
            if record["link_user"] != current_user:
                raise SocialError("state", "link started by another account")
            with self._uow.transaction():
                self._link(record["link_user"], profile)
            return Linked(record["link_user"], provider)
        if record.get("reauth_user"):
            return self._sign_in_again(record["reauth_user"], current_user, profile)
        with self._uow.transaction():
            known = self._identities.find(provider, profile.subject)
            if known is not None:
                user = self._db.get(User, known.user_id)
                if user is None or user.status != "active":
                    raise SocialError("config", "linked account is not active")
                known.last_used_at = self._now()
                return SignedIn(user, provider, authorization)
            holder = self._holder(profile)
            if holder is not None:
                user, kind, value = holder
                row = new_proof_flow(
                    user, kind, value, _profile_dict(profile), authorization, self._now()
                )
                self._db.add(row)
                return ProofNeeded(row, authorization)
        pending = new_token(24)
        data = carry({"profile": _profile_dict(profile)}, authorization)
        self._store.set(f"social:pending:{pending}", json.dumps(data), PENDING_TTL)
        return SignUp(pending, profile, authorization)

    def _sign_in_again(
        self, user_id: str, current_user: str | None, profile: SocialProfile
    ) -> SignedIn:
        """A re-sign-in: the same browser's account, by one of its own linked identities."""
        if user_id != current_user:
            raise SocialError("state", "re-sign-in started by another account")
        with self._uow.transaction():
            known = self._identities.find(profile.provider, profile.subject)
            if known is None or known.user_id != user_id:
                raise NotThisAccount("not an identity of this account")
            user = self._db.get(User, user_id)
            if user is None or user.status != "active":
                raise SocialError("config", "account is not active")
            known.last_used_at = self._now()
            return SignedIn(user, profile.provider, None, reauthenticated=True)

    def _holder(self, profile: SocialProfile) -> tuple[User, str, str] | None:
        """The account holding a contact the person proved to the provider (see the module's
        note on enumeration), with that contact."""
        candidates = []
        if profile.phone:
            candidates.append(("phone", profile.phone))
        if profile.email and profile.email_verified:
            candidates.append(("email", profile.email.strip().lower()))
        for kind, value in candidates:
            column = User.phone if kind == "phone" else User.email
            user = self._db.scalar(select(User).where(column == value, User.status == "active"))
            if user is not None:
                return user, kind, value
        return None

    # --- sign-up: the registration flow takes the pending profile ---------------------------

    def pending(self, key: str | None) -> dict | None:
        """``{"profile": SocialProfile, "authorization": CarriedAuthorization | None}`` of a
        pending sign-up, or None."""
        if not key or len(key) > 64:
            return None
        raw = self._store.get(f"social:pending:{key}")
        if raw is None:
            return None
        data = json.loads(raw)
        return {"profile": _profile_from(data["profile"]), "authorization": carried_by(data)}

    def drop_pending(self, key: str | None) -> None:
        if key and len(key) <= 64:
            self._store.delete(f"social:pending:{key}")

    @staticmethod
    def flow_payload(profile: SocialProfile) -> dict:
        """What the registration flow keeps of the identity it will link."""
        return _profile_dict(profile)

    def link_in_transaction(self, user_id: str, social: dict) -> SocialIdentity:
        """Link the identity a registration flow carried, inside the caller's transaction."""
        return self._link(user_id, _profile_from(social))

    # --- «Персональная информация» ------------------------------------------------------------

    def linked(self, user_id: str) -> list[SocialIdentity]:
        return self._identities.for_user(user_id)

    def unlink(self, user: User, identity_id: int) -> None:
        """Refused when it is the account's last way to sign in (no password, no other link)."""
        with self._uow.transaction():
            identity = self._identities.get(identity_id)
            if identity is None or identity.user_id != user.id:
                raise NotFound("no such linked account")
            others = [i for i in self._identities.for_user(user.id) if i.id != identity.id]
            if not user.password_hash and not others:
                raise LastSignInMethod("the last way to sign in")
            self._unlink(identity)

    # --- the audit seam: every link and unlink happens here ------------------------------------

    def _link(self, user_id: str, profile: SocialProfile) -> SocialIdentity:
        existing = self._identities.find(profile.provider, profile.subject)
        if existing is not None:
            if existing.user_id != user_id:
                raise AlreadyLinked("linked to another account")
            existing.last_used_at = self._now()
            return existing
        now = self._now()
        identity = SocialIdentity(
            user_id=user_id,
            provider=profile.provider,
            subject=profile.subject,
            display_email=(profile.email or None) and profile.email[:254],
            display_name=_display_name(profile),
            created_at=now,
            last_used_at=now,
        )
        try:
            self._identities.add(identity)
        except IntegrityError:
            raise AlreadyLinked("linked meanwhile") from None
        self._audit.record("social.link", subject=user_id, details={"provider": profile.provider})
        return identity

    def _unlink(self, identity: SocialIdentity) -> None:
        self._identities.remove(identity)
        self._audit.record(
            "social.unlink", subject=identity.user_id, details={"provider": identity.provider}
        )

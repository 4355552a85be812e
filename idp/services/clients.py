"""Registration of relying parties (the ``idp clients`` commands use this), and the
per-process cache every client authentication reads from.

The cache (issue 10): a token request authenticates its client on every call, so the client and
its secret digest are kept per process as a detached copy. Every change (a secret rotated, a
client deleted) bumps a version counter in the shared ephemeral store (Redis in production)
after its commit; each process looks at that counter at most once per ``cache_check`` seconds
(1 s) and drops its copies when it moved. So a change made on one replica is honoured by every
replica within ``cache_check``. Should the store be unreachable, the copies are bypassed (read
from the database), and no copy is older than ``cache_max_age`` (60 s) in any case.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.adapters.sql.models import Client
from idp.domain.errors import NotFound, ValidationError
from idp.domain.urls import check_redirect_uri
from idp.persistence import UnitOfWork
from idp.ports import EphemeralStore, StoreUnavailable
from idp.services.audit import AuditService
from idp.services.crypto import KeyedDigest, new_client_id, new_token

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
DEFAULT_SCOPES = ("openid", "profile", "email", "phone", "offline_access")
VERSION_KEY = "clients:version"
VERSION_TTL = 30 * 24 * 3600
MAX_CACHED = 10_000

log = logging.getLogger(__name__)


def _detached(row: Client) -> Client:
    """A copy no session knows: safe to share between requests and threads (read only)."""
    return Client(**{c.key: getattr(row, c.key) for c in Client.__table__.columns})


@dataclass(frozen=True)
class NewClient:
    client: Client
    secret: str | None


class ClientService:
    def __init__(
        self,
        session: Session,
        uow: UnitOfWork,
        digest: KeyedDigest,
        scopes_supported: Sequence[str],
        clock: Callable[[], float] = time.time,
        store: EphemeralStore | None = None,
        cache_check: float = 1.0,
        cache_max_age: float = 60.0,
        audit: AuditService | None = None,
    ) -> None:
        self._db = session
        self._uow = uow
        self._digest = digest
        self._scopes = tuple(scopes_supported)
        self._clock = clock
        self._audit = audit or AuditService.in_memory(clock)
        self._store = store
        self._check, self._max_age = cache_check, cache_max_age
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[Client, float]] = {}
        self._seen: str | None = None  # the version the copies belong to
        self._checked_at: float | None = None
        self._generation = 0  # bumped whenever the copies are dropped

    def create(
        self,
        name: str,
        redirect_uris: Sequence[str] = (),
        public: bool = False,
        first_party: bool = False,
        grant_types: Sequence[str] = (),
        scopes: Sequence[str] = (),
        backchannel_logout_uri: str | None = None,
        post_logout_redirect_uris: Sequence[str] = (),
        auth_method: str | None = None,
        jwks: dict | None = None,
        id_token_alg: str = "ES256",
        client_id: str | None = None,
        secret: str | None = None,
        operator: str | None = None,
    ) -> NewClient:
        """Validate and store a client. ``client_id``/``secret`` are generated unless given
        (the demo data fixes them so the README's example works as written)."""
        name = name.strip()
        if not name or len(name) > 200:
            raise ValidationError("name must have 1 to 200 characters", "name")
        grants = list(dict.fromkeys(grant_types or ("authorization_code", "refresh_token")))
        for grant in grants:
            if grant not in GRANT_TYPES:
                raise ValidationError(
                    f"grant type {grant!r} is not supported (use {', '.join(GRANT_TYPES)}; "
                    "implicit and password grants are not offered)",
                    "grant_type",
                )
        if public and "client_credentials" in grants:
            raise ValidationError("a public client cannot use client_credentials", "grant_type")
        uris = [check_redirect_uri(u) for u in dict.fromkeys(redirect_uris)]
        if "authorization_code" in grants and not uris:
            raise ValidationError(
                "authorization_code needs at least one redirect URI", "redirect_uri"
            )
        logout_uris = [check_redirect_uri(u) for u in dict.fromkeys(post_logout_redirect_uris)]
        if backchannel_logout_uri:
            check_redirect_uri(backchannel_logout_uri)
        wanted = list(dict.fromkeys(scopes or DEFAULT_SCOPES))
        for scope in wanted:
            if scope not in self._scopes:
                raise ValidationError(
                    f"scope {scope!r} is not offered by this provider "
                    f"(offered: {' '.join(self._scopes)})",
                    "scope",
                )
        if auth_method is None:
            auth_method = (
                "none" if public else ("private_key_jwt" if jwks else "client_secret_basic")
            )
        if auth_method not in AUTH_METHODS:
            raise ValidationError(f"auth method must be one of {', '.join(AUTH_METHODS)}", "auth")
        if public != (auth_method == "none"):
            raise ValidationError("public clients, and only they, authenticate with 'none'", "auth")
        if auth_method == "private_key_jwt":
            if not jwks:
                raise ValidationError("private_key_jwt needs the client's public JWK Set", "jwks")
            try:
                keyset = KeySet.import_key_set(jwks)
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise ValidationError(f"the JWK Set is invalid: {exc}", "jwks") from None
            if any(k.is_private for k in keyset.keys):
                raise ValidationError("the JWK Set must hold public keys only", "jwks")
        if id_token_alg not in ("ES256", "RS256"):
            raise ValidationError("id token algorithm must be ES256 or RS256", "id_token_alg")

        if auth_method in ("client_secret_basic", "client_secret_post"):
            secret = secret or new_token(32)
            if len(secret) < 16:
                raise ValidationError("a client secret needs at least 16 characters", "secret")
        else:
            secret = None
        if client_id is not None and (not client_id or len(client_id) > 64 or self.get(client_id)):
            raise ValidationError("client_id is empty, too long or taken", "client_id")
        client = Client(
            client_id=client_id or new_client_id(),
            name=name,
            secret_digest=self._digest.digest(secret) if secret else None,
            public=public,
            first_party=first_party,
            redirect_uris=uris,
            post_logout_redirect_uris=logout_uris,
            grant_types=grants,
            scopes=wanted,
            token_endpoint_auth_method=auth_method,
            jwks=jwks,
            backchannel_logout_uri=backchannel_logout_uri,
            id_token_signed_response_alg=id_token_alg,
            created_at=int(self._clock()),
        )
        with self._uow.transaction():
            self._db.add(client)
            self._audit.record(
                "client.created",
                operator=operator,
                details={"client_id": client.client_id, "name": name[:100]},
            )
        return NewClient(client, secret)

    def get(self, client_id: str) -> Client | None:
        """The client, from this process's copy when it is current (see the module's doc)."""
        if not client_id or len(client_id) > 64:
            return None
        if self._store is None:
            return self._db.get(Client, client_id)
        now = self._clock()
        if not self._current(now):
            return self._db.get(Client, client_id)
        cached = self._cache.get(client_id)
        if cached is not None and now - cached[1] < self._max_age:
            return cached[0]
        generation = self._generation
        row = self._db.get(Client, client_id)
        if row is None:  # unknown ids are not remembered: they would fill the memory
            return None
        copy = _detached(row)
        with self._lock:
            # Not if the copies were dropped meanwhile: this read may predate the change.
            if generation == self._generation:
                if len(self._cache) >= MAX_CACHED:
                    self._cache.clear()
                self._cache[client_id] = (copy, now)
        return copy

    def _current(self, now: float) -> bool:
        """Look at the shared version at most once per ``cache_check``; False when the store
        cannot say (then the database is read directly)."""
        if self._checked_at is not None and 0 <= now - self._checked_at < self._check:
            return True
        try:
            version = self._store.get(VERSION_KEY)
        except StoreUnavailable:
            self._drop()
            return False
        with self._lock:
            if version != self._seen:
                self._cache.clear()
                self._generation += 1
                self._seen = version
            self._checked_at = now
        return True

    def _drop(self) -> None:
        with self._lock:
            self._cache.clear()
            self._generation += 1
            self._checked_at = None

    def _changed(self) -> None:
        """After a committed change: drop our copies and tell the other processes."""
        self._drop()
        if self._store is None:
            return
        try:
            self._store.incr(VERSION_KEY, VERSION_TTL)
        except StoreUnavailable:
            log.warning(
                "client change not announced (store unavailable); other processes "
                "see it within %s s",
                self._max_age,
            )

    def rotate_secret(self, client_id: str, operator: str | None = None) -> str:
        """A new secret for a confidential client; the old one stops working everywhere
        within ``cache_check`` seconds."""
        with self._uow.transaction():
            row = self._db.get(Client, client_id)
            if row is None:
                raise NotFound("no such client")
            if row.secret_digest is None:
                raise ValidationError("the client has no secret (public or private_key_jwt)")
            secret = new_token(32)
            row.secret_digest = self._digest.digest(secret)
            self._audit.record(
                "client.secret_rotated", operator=operator, details={"client_id": client_id}
            )
        self._changed()
        return secret

    def delete(self, client_id: str, operator: str | None = None) -> None:
        """Remove a client with its codes, grants and consents (ON DELETE CASCADE)."""
        with self._uow.transaction():
            row = self._db.get(Client, client_id)
            if row is None:
                raise NotFound("no such client")
            self._db.delete(row)
            self._audit.record(
                "client.deleted", operator=operator, details={"client_id": client_id}
            )
        self._changed()

    def require(self, client_id: str) -> Client:
        client = self.get(client_id)
        if client is None:
            raise NotFound("no such client")
        return client

    def list(self) -> list[Client]:
        return list(self._db.scalars(select(Client).order_by(Client.created_at)))

    def check_secret(self, client: Client, secret: str) -> bool:
        return self._digest.verify(secret, client.secret_digest)

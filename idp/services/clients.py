"""Registration of relying parties (the ``idp clients`` commands use this)."""

from __future__ import annotations

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
from idp.services.audit import AuditService
from idp.services.crypto import KeyedDigest, new_token

GRANT_TYPES = ("authorization_code", "refresh_token", "client_credentials")
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "none")
DEFAULT_SCOPES = ("openid", "profile", "email", "phone", "offline_access")


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
        audit: AuditService | None = None,
    ) -> None:
        self._db = session
        self._uow = uow
        self._digest = digest
        self._scopes = tuple(scopes_supported)
        self._clock = clock
        self._audit = audit or AuditService.in_memory(clock)

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
            client_id=client_id or new_token(18),
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
        if not client_id or len(client_id) > 64:
            return None
        return self._db.get(Client, client_id)

    def require(self, client_id: str) -> Client:
        client = self.get(client_id)
        if client is None:
            raise NotFound("no such client")
        return client

    def list(self) -> list[Client]:
        return list(self._db.scalars(select(Client).order_by(Client.created_at)))

    def check_secret(self, client: Client, secret: str) -> bool:
        return self._digest.verify(secret, client.secret_digest)

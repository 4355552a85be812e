"""Authorization codes, access tokens (RFC 9068 JWTs), refresh-token families, ID tokens.

Storage rules that matter for security, each enforced with one atomic statement of the
:class:`~idp.persistence.TokenStore` so that parallel requests cannot both win:

* a code is consumed by ``UPDATE … WHERE code_hash = … AND consumed_at IS NULL RETURNING``;
  only when that claims nothing is the code looked up, and a second redemption, finding it
  consumed, revokes every token the first one issued (RFC 6749 §4.1.2, RFC 9700 §4.2.4);
* a refresh token is rotated by ``UPDATE … WHERE refresh_hash = … AND rotated_at IS NULL …
  RETURNING``; only when that claims nothing is it looked up, and presenting a rotated token
  revokes its whole family (RFC 9700 §4.14.2); a family has an absolute lifetime. The
  rotation and the successor's ``INSERT`` are one unit of work: a failure in between leaves
  the old token as it was, so the client's retry is not taken for reuse.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from idp.adapters.sql.models import AuthorizationCode, Client, Grant, User
from idp.domain.access import SERVICE_JTI_PREFIX, AccessGrant, Holder
from idp.domain.scopes import SCOPE_CLAIMS, split_scope
from idp.persistence import TokenStore, UnitOfWork
from idp.services.crypto import new_token, sha256_hex
from idp.services.keys import KeyService, TokenInvalid


@dataclass(frozen=True)
class TokenPolicy:
    issuer: str
    code_ttl: int
    access_token_ttl: int
    id_token_ttl: int
    refresh_token_ttl: int
    default_alg: str = "ES256"


@dataclass(frozen=True)
class Authentication:
    """How and when the user authenticated, carried from the session into tokens."""

    auth_time: int
    acr: str | None
    amr: tuple[str, ...]
    sid: str | None


@dataclass(frozen=True)
class Issued:
    response: dict
    grant: Grant


@dataclass(frozen=True)
class Refreshed:
    """The outcome of :meth:`TokenService.refresh`: ``issued`` (with the ``user`` and the
    rotated ``previous`` grant), or ``refused`` naming why: ``invalid`` (unknown, foreign,
    expired, revoked or reused token), ``scope`` (more than the grant holds) or ``inactive``
    (the account is gone or not active). A refusal's revocations are committed."""

    issued: Issued | None = None
    user: User | None = None
    previous: Grant | None = None
    refused: str | None = None


def half_hash(value: str) -> str:
    """OIDC Core §3.1.3.6 ``at_hash``: left half of SHA-256 (ES256 and RS256 both use it)."""
    digest = hashlib.sha256(value.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


def user_claims(user: User | Holder, scopes: Sequence[str]) -> dict:
    """Claims released for ``scopes`` (OIDC Core §5.4), names as the user entered them."""
    claims: dict = {}
    if "profile" in scopes:
        full = " ".join(p for p in (user.family_name, user.given_name, user.middle_name) if p)
        claims.update(
            name=full,
            family_name=user.family_name,
            given_name=user.given_name,
            locale=user.locale,
            updated_at=user.updated_at,
        )
        if user.middle_name:
            claims["middle_name"] = user.middle_name
    if "email" in scopes and user.email:
        claims.update(email=user.email, email_verified=bool(user.email_verified))
    if "phone" in scopes and user.phone:
        claims.update(phone_number=user.phone, phone_number_verified=bool(user.phone_verified))
    return {k: v for k, v in claims.items() if k in _released(scopes)}


def _released(scopes: Sequence[str]) -> set[str]:
    names: set[str] = set()
    for scope in scopes:
        names.update(SCOPE_CLAIMS.get(scope, ()))
    return names


class TokenService:
    def __init__(
        self,
        store: TokenStore,
        uow: UnitOfWork,
        keys: KeyService,
        policy: TokenPolicy,
        clock: Callable[[], float] = time.time,
        clients: Callable[[str], Client | None] = lambda _client_id: None,
    ) -> None:
        """``clients`` looks a client up (ClientService.get, its per-process cache): a
        client_credentials token is good only while its client is."""
        self._store = store
        self._uow = uow
        self._keys = keys
        self._policy = policy
        self._clock = clock
        self._clients = clients

    @property
    def policy(self) -> TokenPolicy:
        return self._policy

    def _now(self) -> int:
        return int(self._clock())

    # --- authorization codes ----------------------------------------------------------

    def save_code(
        self,
        client_id: str,
        user_id: str,
        redirect_uri: str,
        scope: str,
        nonce: str | None,
        code_challenge: str,
        code_challenge_method: str,
        authn: Authentication,
    ) -> str:
        code = new_token(32)
        now = self._now()
        row = AuthorizationCode(
            code_hash=sha256_hex(code),
            client_id=client_id,
            user_id=user_id,
            redirect_uri=redirect_uri,
            scope=scope,
            nonce=nonce,
            code_challenge=code_challenge,
            code_challenge_method=code_challenge_method,
            auth_time=authn.auth_time,
            acr=authn.acr,
            amr=list(authn.amr),
            sid=authn.sid,
            created_at=now,
            expires_at=now + self._policy.code_ttl,
        )
        with self._uow.transaction():
            self._store.add_code(row)
        return code

    def consume_code(self, code: str, client_id: str) -> AuthorizationCode | None:
        """Redeem ``code`` once. A replay revokes what the first redemption issued."""
        if not code or len(code) > 200:
            return None
        code_hash, now = sha256_hex(code), self._now()
        with self._uow.transaction():
            row = self._store.claim_code(code_hash, client_id, now)
            if row is None:
                # Nothing claimed: the code is unknown, another client's (left as it is), or
                # spent already — only the last is a replay.
                known = self._store.code_by_hash(code_hash)
                if (
                    known is not None
                    and known.client_id == client_id
                    and known.consumed_at is not None
                ):
                    self._store.revoke_code_families(known.id, now)
                return None
        if row.expires_at <= now:
            return None
        return row

    def revoke_by_code(self, code_id: int) -> None:
        with self._uow.transaction():
            self._store.revoke_code_families(code_id, self._now())

    # --- issuing ------------------------------------------------------------------------

    def issue(
        self,
        client: Client,
        user: User | None,
        scope: str,
        audience: Sequence[str],
        authn: Authentication | None = None,
        include_refresh: bool = False,
        code_id: int | None = None,
        family: Grant | None = None,
    ) -> Issued:
        """Mint an access token (and a refresh token) and record the grant."""
        now = self._now()
        jti = new_token(18)
        subject = user.id if user else client.client_id
        claims = {
            "iss": self._policy.issuer,
            "sub": subject,
            "aud": audience[0] if len(audience) == 1 else list(audience),
            "client_id": client.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + self._policy.access_token_ttl,
            "jti": jti,
            "scope": scope,
        }
        if authn is not None:
            claims["auth_time"] = authn.auth_time
            if authn.acr:
                claims["acr"] = authn.acr
            if authn.amr:
                claims["amr"] = list(authn.amr)
            if authn.sid:
                claims["sid"] = authn.sid
        access_token = self._keys.sign(claims, self._policy.default_alg, typ="at+jwt")
        refresh_token = new_token(32) if include_refresh else None
        grant = Grant(
            id=str(uuid.uuid4()),
            family_id=family.family_id if family else str(uuid.uuid4()),
            client_id=client.client_id,
            user_id=user.id if user else None,
            code_id=family.code_id if family else code_id,
            sid=authn.sid if authn else None,
            scope=scope,
            audience=list(audience),
            access_jti=jti,
            access_expires_at=now + self._policy.access_token_ttl,
            refresh_hash=sha256_hex(refresh_token) if refresh_token else None,
            family_expires_at=(
                family.family_expires_at if family else now + self._policy.refresh_token_ttl
            ),
            auth_time=authn.auth_time if authn else None,
            acr=authn.acr if authn else None,
            amr=list(authn.amr) if authn else [],
            created_at=now,
        )
        with self._uow.transaction():
            self._store.add_grant(grant)
        response = {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": self._policy.access_token_ttl,
            "scope": scope,
        }
        if refresh_token:
            response["refresh_token"] = refresh_token
        return Issued(response, grant)

    def id_token(
        self,
        client: Client,
        user: User,
        scope: str,
        authn: Authentication,
        nonce: str | None,
        access_token: str | None,
    ) -> str:
        """OIDC Core §2 ID token, signed with the client's registered algorithm."""
        now = self._now()
        claims = {
            "iss": self._policy.issuer,
            "sub": user.id,
            "aud": client.client_id,
            "azp": client.client_id,
            "iat": now,
            "exp": now + self._policy.id_token_ttl,
            "auth_time": authn.auth_time,
        }
        if nonce:
            claims["nonce"] = nonce
        if authn.acr:
            claims["acr"] = authn.acr
        if authn.amr:
            claims["amr"] = list(authn.amr)
        if authn.sid:
            claims["sid"] = authn.sid
        if access_token:
            claims["at_hash"] = half_hash(access_token)
        claims.update(user_claims(user, split_scope(scope)))
        return self._keys.sign(claims, client.id_token_signed_response_alg or "ES256", typ="JWT")

    def service_token(self, scope: str, audience: str, ttl: int = 120) -> str:
        """A short access token the IdP mints for its own calls to a resource (RFC 9068),
        e.g. ``linking:auto`` for AutoAttach; nothing to revoke, so no grant is stored."""
        now = self._now()
        claims = {
            "iss": self._policy.issuer,
            "sub": "idp",
            "client_id": "idp",
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": new_token(18),
            "scope": scope,
        }
        return self._keys.sign(claims, self._policy.default_alg, typ="at+jwt")

    def customer_token(
        self,
        subject: str,
        scope: str,
        audience: str,
        sid: str | None = None,
        ttl: int = 60,
    ) -> str:
        """A short access token (RFC 9068) for the IdP's own pages acting for a signed-in
        person at a resource, e.g. scope ``linking`` at the linking service: ``sub`` is the
        person, ``client_id`` the cabinet, ``sid`` the SSO session. Minted per request while
        the session lives, so it ends with the session within ``ttl`` seconds; never stored."""
        now = self._now()
        claims = {
            "iss": self._policy.issuer,
            "sub": subject,
            "client_id": "idp-cabinet",
            "aud": audience,
            "iat": now,
            "nbf": now,
            "exp": now + ttl,
            "jti": new_token(18),
            "scope": scope,
        }
        if sid:
            claims["sid"] = sid
        return self._keys.sign(claims, self._policy.default_alg, typ="at+jwt")

    def issue_service(self, client: Client, scope: str, audience: Sequence[str]) -> dict:
        """RFC 6749 §4.4: a client_credentials access token (RFC 9068) and nothing stored.
        Its ``jti`` starts with ``svc.``; introspection checks the signature, the client (still
        registered, within ClientService's bound) and the deny list, where revocation
        (RFC 7009) puts the ``jti`` until the token expires (:meth:`deny`)."""
        now = self._now()
        claims = {
            "iss": self._policy.issuer,
            "sub": client.client_id,
            "aud": audience[0] if len(audience) == 1 else list(audience),
            "client_id": client.client_id,
            "iat": now,
            "nbf": now,
            "exp": now + self._policy.access_token_ttl,
            "jti": SERVICE_JTI_PREFIX + new_token(18),
            "scope": scope,
        }
        return {
            "access_token": self._keys.sign(claims, self._policy.default_alg, typ="at+jwt"),
            "token_type": "Bearer",
            "expires_in": self._policy.access_token_ttl,
            "scope": scope,
        }

    # --- refresh tokens ------------------------------------------------------------------

    def refresh(
        self,
        refresh_token: str,
        client: Client,
        requested: Sequence[str],
        audience: Sequence[str],
        load_user: Callable[[str], User | None],
    ) -> Refreshed:
        """RFC 6749 §6 with rotation (RFC 9700 §4.14.2), one unit of work: claim the token
        with one conditional ``UPDATE … RETURNING``, ``INSERT`` its successor; the token is
        looked up only when the claim fails (to tell reuse) or when ``requested`` names
        scopes, which must lie within the grant's (checked before the token is spent); none
        means the grant's own."""
        if not refresh_token or len(refresh_token) > 200:
            return Refreshed(refused="invalid")
        refresh_hash = sha256_hex(refresh_token)
        with self._uow.transaction():
            if requested:
                known = self._store.grant_by_refresh(refresh_hash)
                if known is None or known.client_id != client.client_id:
                    return Refreshed(refused="invalid")
                if not set(requested) <= set(split_scope(known.scope)):
                    return Refreshed(refused="scope")
            row = self._claim(refresh_hash, client.client_id)
            if row is None:
                return Refreshed(refused="invalid")
            user = load_user(row.user_id) if row.user_id else None
            if user is None or not user.usable:
                self._store.revoke_family(row.family_id, self._now())
                return Refreshed(refused="inactive")
            authn = Authentication(row.auth_time or 0, row.acr, tuple(row.amr or ()), row.sid)
            scope = " ".join(requested) if requested else row.scope
            issued = self.issue(
                client, user, scope, audience, authn=authn, include_refresh=True, family=row
            )
            return Refreshed(issued=issued, user=user, previous=row)

    def _claim(self, refresh_hash: str, client_id: str) -> Grant | None:
        now = self._now()
        claimed = self._store.claim_refresh(refresh_hash, client_id, now)
        if claimed is None:
            # Nothing claimed: unknown, another client's, revoked or expired (refused as it
            # is), or rotated already — a replay, so the family ends.
            known = self._store.grant_by_refresh(refresh_hash)
            if (
                known is not None
                and known.client_id == client_id
                and known.rotated_at is not None
                and known.revoked_at is None
                and known.family_expires_at > now
            ):
                self._store.revoke_family(known.family_id, now)
        return claimed

    # --- lookups and revocation ----------------------------------------------------------

    def find_access(self, token: str) -> AccessGrant | None:
        """What a live JWT access token this provider issued stands for: a person's token
        with its grant and account (one joined read), or a client_credentials token."""
        try:
            claims = self._keys.verify(token, typ="at+jwt", issuer=self._policy.issuer)
        except TokenInvalid:
            return None
        jti = claims.get("jti")
        if not isinstance(jti, str):
            return None
        if jti.startswith(SERVICE_JTI_PREFIX):
            return self._service_access(jti, claims)
        return self._store.access_by_jti(jti)

    def _service_access(self, jti: str, claims: dict) -> AccessGrant | None:
        """A client_credentials token is live while its client is registered for that grant
        (a client deleted, or deleted and registered anew, ends its tokens) and its ``jti``
        is not on the deny list (one primary-key read)."""
        client_id = claims.get("client_id")
        if not isinstance(client_id, str) or claims.get("sub") != client_id:
            return None
        client = self._clients(client_id)
        if (
            client is None
            or "client_credentials" not in (client.grant_types or ())
            or claims["iat"] < client.created_at
        ):
            return None
        if self._store.denied(jti):
            return None
        aud = claims.get("aud")
        return AccessGrant(
            jti=jti,
            client_id=client_id,
            scope=str(claims.get("scope") or ""),
            audience=(aud,) if isinstance(aud, str) else tuple(aud or ()),
            issued_at=claims["iat"],
            expires_at=claims["exp"],
        )

    def find_refresh(self, token: str) -> Grant | None:
        if not token or len(token) > 200:
            return None
        return self._store.grant_by_refresh(sha256_hex(token))

    def refresh_active(self, grant: Grant) -> bool:
        return (
            grant.refresh_hash is not None
            and grant.revoked_at is None
            and grant.rotated_at is None
            and grant.family_expires_at > self._now()
        )

    def revoke_family(self, family_id: str) -> None:
        with self._uow.transaction():
            self._store.revoke_family(family_id, self._now())

    def deny(self, access: AccessGrant) -> None:
        """Revoke a client_credentials token: its ``jti`` on the deny list until it expires."""
        with self._uow.transaction():
            self._store.deny(access.jti, access.expires_at)

    def revoke_access(self, grant_id: str) -> None:
        """Revoke one access token; its refresh token, if any, goes with it."""
        with self._uow.transaction():
            grant = self._store.grant(grant_id)
            if grant is not None and grant.refresh_hash is not None:
                self._store.revoke_family(grant.family_id, self._now())
            else:
                self._store.revoke_grant(grant_id, self._now())

    def revoke_for(
        self, user_id: str, client_id: str | None = None, sid: str | None = None
    ) -> None:
        """Revoke a user's grants: all, one client's, or those of one SSO session."""
        with self._uow.transaction():
            self._store.revoke_for(user_id, self._now(), client_id=client_id, sid=sid)

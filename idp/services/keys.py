"""Signing keys: creation, rotation with overlap, the published JWK Set, signing, verifying.

Keys live in the database (encrypted) so every replica signs with the same key. ES256 is the
default (an RS256 signature costs about ten times more); RS256 is offered for clients that
need it. A rotated-out key stays in the JWK Set until every token it signed has expired.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import false, func, select, text, update
from sqlalchemy.orm import Session

from idp.adapters.sql.models import SigningKey
from idp.adapters.sql.uow import SqlUnitOfWork
from idp.domain.errors import SigningKeyMissing
from idp.persistence import UnitOfWork
from idp.services.audit import AuditService
from idp.services.crypto import Sealer

SUPPORTED_ALGS = ("ES256", "RS256")
#: Cache-Control max-age of /jwks.json (idp/web/discovery.py).
JWKS_MAX_AGE = 60


class TokenInvalid(Exception):
    """A token failed signature, type or claim checks."""


class KeyService:
    def __init__(
        self,
        session: Session,
        sealer: Sealer,
        max_token_ttl: int,
        clock: Callable[[], float] = time.time,
        cache_seconds: int = 30,
        uow: UnitOfWork | None = None,
        audit: AuditService | None = None,
    ) -> None:
        self._audit = audit or AuditService.in_memory(clock)
        self._db = session
        self._uow = uow or SqlUnitOfWork(session)
        self._sealer = sealer
        self._max_ttl = max_token_ttl
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._cache: tuple[float, dict[str, tuple[str, object]], dict] | None = None
        self._keyset: tuple[dict, KeySet] | None = None
        # Private keys parsed once per kid (a kid's key never changes): importing an RSA key
        # costs ~70 ms of CPU, which every reload of the view used to pay again.
        self._parsed: dict[str, object] = {}
        self._lock = threading.Lock()
        # One thread reloads an expired view; the others go on with the previous one meanwhile.
        self._reload = threading.Lock()

    # --- administration -------------------------------------------------------------

    @property
    def propagation_delay(self) -> int:
        """How long a new key is published before it signs: our own cache on every replica,
        the JWK Set's HTTP max-age, and a resource server's refetch interval."""
        return 2 * self._cache_seconds + JWKS_MAX_AGE + 30

    def _generate(self, alg: str, activates_at: int) -> SigningKey:
        key = ECKey.generate_key("P-256") if alg == "ES256" else RSAKey.generate_key(2048)
        kid = key.thumbprint()
        public = {**key.as_dict(private=False), "kid": kid, "alg": alg, "use": "sig"}
        private = json.dumps(key.as_dict(private=True))
        return SigningKey(
            kid=kid,
            alg=alg,
            private_jwk_enc=self._sealer.seal(private, kid),
            public_jwk=public,
            created_at=int(self._clock()),
            activates_at=activates_at,
        )

    def ensure_keys(self) -> list[str]:
        """Create an active key for each supported algorithm that has none."""
        created = []
        with self._uow.transaction():
            for alg in SUPPORTED_ALGS:
                active = self._db.scalar(
                    select(SigningKey).where(SigningKey.alg == alg, SigningKey.retired_at.is_(None))
                )
                if active is None:
                    row = self._generate(alg, int(self._clock()))
                    self._db.add(row)
                    created.append(row.kid)
        self.invalidate()
        return created

    def _signs_now(self, alg: str, now: int) -> bool:
        """Some key of ``alg`` is allowed to sign at ``now``."""
        for row in self._db.scalars(select(SigningKey).where(SigningKey.alg == alg)):
            starts = row.activates_at if row.activates_at is not None else row.created_at
            if starts <= now and (row.retired_at is None or row.retired_at > now):
                return True
        return False

    def rotate(self, alg: str, activate_in: int | None = None, operator: str | None = None) -> str:
        """Publish a new key for ``alg`` now; it starts signing after ``activate_in`` seconds
        (default :attr:`propagation_delay`; 0 for an emergency rotation). The key it replaces
        signs until then and stays published until its last token has expired.

        When no key of ``alg`` signs yet (a fresh database), the new one signs at once: the
        delay only protects caches that hold an older key, and waiting would leave the
        provider unable to issue tokens."""
        if alg not in SUPPORTED_ALGS:
            raise ValueError(f"unsupported algorithm {alg}")
        now = int(self._clock())
        starts = now + (self.propagation_delay if activate_in is None else max(0, activate_in))
        with self._uow.transaction():
            if not self._signs_now(alg, now):
                starts = now
            for old in self._db.scalars(
                select(SigningKey).where(SigningKey.alg == alg, SigningKey.retired_at.is_(None))
            ):
                old.retired_at = starts
                # Other replicas' caches may sign with the old key a little longer.
                old.publish_until = starts + self._max_ttl + 2 * self._cache_seconds
            row = self._generate(alg, starts)
            self._db.add(row)
            self._audit.record(
                "key.rotated", operator=operator, details={"kid": row.kid, "alg": alg}
            )
        self.invalidate()
        return row.kid

    def rotate_if_older(
        self, alg: str, max_age: int, activate_in: int | None = None, operator: str | None = None
    ) -> str | None:
        """For a cron job: :meth:`rotate` only when the newest key of ``alg`` is at least
        ``max_age`` seconds old (or there is none); None when it is younger. Two runs at once
        rotate once: the check and the rotation hold a lock taken first (a transaction-scoped
        advisory lock on PostgreSQL, the database's write lock on SQLite), so the second run
        sees the first one's key."""
        with self._uow.transaction():
            if self._db.get_bind().dialect.name == "postgresql":
                self._db.execute(
                    text("SELECT pg_advisory_xact_lock(hashtext(:name))"),
                    {"name": f"idp.keys.rotate.{alg}"},
                )
            else:  # a write that changes nothing takes SQLite's single write lock now
                self._db.execute(update(SigningKey).where(false()).values(alg=SigningKey.alg))
            newest = self._db.scalar(
                select(func.max(SigningKey.created_at)).where(SigningKey.alg == alg)
            )
            if newest is not None and int(self._clock()) - newest < max_age:
                return None
            return self.rotate(alg, activate_in, operator=operator)

    def list_keys(self) -> list[SigningKey]:
        return list(self._db.scalars(select(SigningKey).order_by(SigningKey.created_at)))

    # --- cached views ---------------------------------------------------------------

    def invalidate(self) -> None:
        with self._lock:
            self._cache = None

    def _load(self) -> tuple[dict[str, tuple[str, object]], dict]:
        now = self._clock()
        cache = self._cache
        if cache and now - cache[0] < self._cache_seconds:
            return cache[1], cache[2]
        if cache is not None and not self._reload.acquire(blocking=False):
            # Another thread is reloading an expired view: this one keeps the previous view
            # for the moment (it was valid a cache period ago; a new key is published
            # propagation_delay seconds before it signs, which covers this).
            return cache[1], cache[2]
        if cache is None:
            self._reload.acquire()
        try:
            return self._reload_view()
        finally:
            self._reload.release()

    def _private(self, row: SigningKey) -> object:
        key = self._parsed.get(row.kid)
        if key is None:
            private = json.loads(self._sealer.open(row.private_jwk_enc, row.kid))
            key_cls = ECKey if row.alg == "ES256" else RSAKey
            key = key_cls.import_key(private, {"kid": row.kid})
            self._parsed[row.kid] = key
        return key

    def _reload_view(self) -> tuple[dict[str, tuple[str, object]], dict]:
        now = self._clock()
        cache = self._cache
        if cache and now - cache[0] < self._cache_seconds:
            return cache[1], cache[2]  # reloaded by another thread while this one waited
        active: dict[str, tuple[str, object]] = {}
        published = []
        rows = self._db.scalars(select(SigningKey).order_by(SigningKey.created_at.desc()))
        for row in rows:
            if row.publish_until is not None and row.publish_until <= now:
                continue
            published.append(row.public_jwk)
            starts = row.activates_at if row.activates_at is not None else row.created_at
            signing = starts <= now and (row.retired_at is None or row.retired_at > now)
            if signing and row.alg not in active:
                active[row.alg] = (row.kid, self._private(row))
        # Parsed keys of rows gone or retired from signing are dropped with the old view.
        self._parsed = {kid: key for kid, key in self._parsed.items() if kid in _kids(active)}
        # A cache miss inside a use case must not end its transaction (KeyService shares the
        # session); outside one, the read transaction ends here.
        self._uow.end_read()
        jwks = {"keys": published}
        with self._lock:
            self._cache = (now, active, jwks)
            # Parsed once per key change, not per verification (RSA key import is costly).
            # None published yet (a fresh database): nothing to parse; verify refuses.
            self._keyset = (jwks, KeySet.import_key_set(jwks)) if published else None
        return active, jwks

    def _published(self) -> KeySet:
        """The published keys, parsed, for :meth:`verify`."""
        _, jwks = self._load()
        cached = self._keyset
        if cached is None or cached[0] is not jwks:
            return KeySet.import_key_set(jwks)
        return cached[1]

    def jwks(self) -> dict:
        """The public JWK Set (RFC 7517 §5) served at ``/jwks.json``."""
        return self._load()[1]

    def algorithms(self) -> list[str]:
        return sorted(self._load()[0])

    def signs_in(self, kid: str) -> int:
        """Seconds until the key ``kid`` signs (0: it signs now)."""
        row = self._db.get(SigningKey, kid)
        starts = row.activates_at if row.activates_at is not None else row.created_at
        return max(0, math.ceil(starts - self._clock()))

    def missing_algorithms(self) -> list[str]:
        """The supported algorithms no key can sign with now (readiness). A cached view that
        misses one is reloaded once, so a key added by another process is seen at once."""
        missing = [alg for alg in SUPPORTED_ALGS if alg not in self._load()[0]]
        if missing:
            self.invalidate()
            missing = [alg for alg in SUPPORTED_ALGS if alg not in self._load()[0]]
        return missing

    # --- use --------------------------------------------------------------------------

    def _signer(self, alg: str) -> tuple[str, object]:
        active, _ = self._load()
        if alg not in active:
            # Perhaps a key was added since the cache was filled (`idp keys rotate` elsewhere).
            self.invalidate()
            active, _ = self._load()
        if alg not in active:
            raise SigningKeyMissing(alg)
        return active[alg]

    def sign(self, claims: dict, alg: str, typ: str = "JWT") -> str:
        """Sign with the active key of ``alg``; :class:`SigningKeyMissing` when there is none."""
        kid, key = self._signer(alg)
        return jwt.encode({"alg": alg, "kid": kid, "typ": typ}, claims, key, algorithms=[alg])

    def verify(
        self, token: str, typ: str | None, issuer: str | None = None, check_expiry: bool = True
    ) -> dict:
        """Verify a token this provider signed.

        Signature by a published key with an allow-listed ``alg`` (never ``none`` or HMAC),
        explicit ``typ`` (RFC 8725 §3.11), and the claims themselves: joserfc's ``decode``
        checks none, so ``iss``, ``exp``, ``nbf`` and ``iat`` are validated here with
        :class:`~joserfc.jwt.JWTClaimsRegistry` (RFC 8725 §3.8-3.10).
        """
        try:
            keyset = self._published()
            decoded = jwt.decode(token, keyset, algorithms=list(SUPPORTED_ALGS))
        except (JoseError, ValueError, TypeError) as exc:
            raise TokenInvalid(str(exc)) from exc
        if typ is not None and str(decoded.header.get("typ", "")).lower() != typ.lower():
            raise TokenInvalid("unexpected token type")
        options: dict = {"iat": {"essential": True}}
        if issuer is not None:
            options["iss"] = {"essential": True, "value": issuer}
        if check_expiry:
            options["exp"] = {"essential": True}
        registry = jwt.JWTClaimsRegistry(now=lambda: int(self._clock()), leeway=5, **options)
        claims = dict(decoded.claims)
        if not check_expiry:
            claims.pop("exp", None)
        try:
            registry.validate(claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise TokenInvalid(str(exc)) from exc
        return decoded.claims


def _kids(active: dict[str, tuple[str, object]]) -> set[str]:
    return {kid for kid, _ in active.values()}

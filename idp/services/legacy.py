"""Accounts of the older regional cabinets: their password hashes, bulk import, upgrade.

Accepted hash formats, stored as they came (:func:`identify` names them):

* ``bcrypt`` — ``$2a$``, ``$2b$`` or ``$2y$``, cost 04-14, 53 characters of salt and hash
  (OpenBSD, PHP ``password_hash``). As in every bcrypt, only the first 72 bytes count.
* ``pbkdf2_sha256`` — PBKDF2-HMAC-SHA256 (RFC 8018 §5.2), 1,000-3,000,000 iterations, a
  16-64 byte key, in either spelling:
  Django ``pbkdf2_sha256$<iterations>$<salt>$<hash>`` (salt text used as UTF-8 bytes, hash in
  standard Base64 with padding), or passlib ``$pbkdf2-sha256$<rounds>$<salt>$<hash>`` (both
  in passlib's "ab64": Base64 with ``.`` for ``+`` and no padding; the salt is raw bytes).
* ``md5_crypt`` — ``$1$<salt>$<22 characters>``, Poul-Henning Kamp's FreeBSD MD5-crypt
  (glibc ``crypt``, ``openssl passwd -1``), salt of 0-8 characters of ``./0-9A-Za-z``.

The cost caps bound what one verification may spend (about a second here). Passwords are the
UTF-8 bytes of what the user typed, not normalised: the old cabinets hashed what the browser
sent. Digests compare in constant time. Imported accounts are ``status = "legacy"`` and cannot
sign in (:meth:`UserService.find_by_login` admits ``active`` only) until :class:`LegacyUpgrade`
checks the old password and replaces the hash with argon2id (OWASP Password Storage Cheat
Sheet, "upgrading legacy hashes"; ASVS 4.0.3 V2.4). :class:`LegacyImporter` loads accounts
from records that :mod:`idp.legacy_cli` reads from CSV or JSON Lines.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import bcrypt
from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.adapters.sql.models import User
from idp.adapters.sql.uow import SqlUnitOfWork
from idp.domain.contacts import normalize_email, normalize_phone, parse_login
from idp.domain.errors import IdpError, ValidationError
from idp.domain.regions import check_region
from idp.persistence import UnitOfWork
from idp.services.password_policy import PasswordPolicy, WeakPassword
from idp.services.passwords import MAX_PASSWORD_LENGTH, PasswordHasher
from idp.services.users import check_name

_B64 = r"[A-Za-z0-9+/]+={0,2}"
_AB64 = r"[A-Za-z0-9./]+"
_FORMATS = {  # re.ASCII: \d and \s must not admit other scripts' digits and spaces
    "bcrypt": re.compile(r"\$2[aby]\$(?P<cost>\d\d)\$[./A-Za-z0-9]{53}", re.ASCII),
    "pbkdf2_sha256": re.compile(
        rf"pbkdf2_sha256\$(?P<n>\d{{1,8}})\$(?P<salt>[^$\s]{{1,128}})"
        rf"\$(?P<hash>{_B64})",
        re.ASCII,
    ),
    "pbkdf2_sha256/passlib": re.compile(
        rf"\$pbkdf2-sha256\$(?P<n>\d{{1,8}})\$(?P<salt>{_AB64})"
        rf"\$(?P<hash>{_AB64})",
        re.ASCII,
    ),
    "md5_crypt": re.compile(r"\$1\$(?P<salt>[./0-9A-Za-z]{0,8})\$(?P<hash>[./0-9A-Za-z]{22})"),
}
BCRYPT_COSTS = range(4, 15)
PBKDF2_ITERATIONS = range(1_000, 3_000_001)
_CRYPT64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _b64(text: str, adapted: bool) -> bytes:
    if adapted:
        text = text.replace(".", "+") + "=" * (-len(text) % 4)
    return base64.b64decode(text, validate=True)


def _parse(stored: str) -> tuple[str, re.Match[str]] | tuple[None, str]:
    """(scheme, match) for an accepted hash, or (None, why not)."""
    for name, pattern in _FORMATS.items():
        match = pattern.fullmatch(stored)
        if match is None:
            continue
        if name == "bcrypt" and int(match["cost"]) not in BCRYPT_COSTS:
            return None, f"bcrypt cost must be {BCRYPT_COSTS.start}-{BCRYPT_COSTS.stop - 1}"
        if name.startswith("pbkdf2"):
            if int(match["n"]) not in PBKDF2_ITERATIONS:
                return None, (
                    f"PBKDF2 iterations must be {PBKDF2_ITERATIONS.start:,}-"
                    f"{PBKDF2_ITERATIONS.stop - 1:,}"
                )
            try:
                key = _b64(match["hash"], adapted="passlib" in name)
                if "passlib" in name:
                    _b64(match["salt"], adapted=True)
            except (binascii.Error, ValueError):
                return None, "PBKDF2 salt or hash is not valid Base64"
            if not 16 <= len(key) <= 64:
                return None, "PBKDF2 hash must be 16-64 bytes"
        return name, match
    return None, (
        "not a recognised hash (bcrypt $2a$/$2b$/$2y$, pbkdf2_sha256$…, "
        "$pbkdf2-sha256$…, $1$ MD5-crypt)"
    )


def identify(stored: str | None) -> str | None:
    """``"bcrypt"``, ``"pbkdf2_sha256"`` or ``"md5_crypt"``; ``None`` for anything else."""
    scheme, _ = _parse(stored or "")
    return scheme.split("/")[0] if scheme else None


def hash_problem(stored: str) -> str | None:
    """Why ``stored`` is not an accepted legacy hash, or ``None`` when it is."""
    scheme, why = _parse(stored)
    return None if scheme else why


def md5_crypt(password: bytes, salt: bytes) -> str:
    """FreeBSD MD5-crypt (PHK, 1994) of ``password``: ``$1$<salt>$<hash>``."""
    salt = salt[:8]
    alternate = _md5(password + salt + password).digest()
    ctx = _md5(password + b"$1$" + salt)
    for offset in range(0, len(password), 16):
        ctx.update(alternate[: min(16, len(password) - offset)])
    i = len(password)
    while i:
        # PHK's quirk: a zero byte for set bits, the first password byte for clear ones.
        ctx.update(b"\0" if i & 1 else password[:1])
        i >>= 1
    final = ctx.digest()
    for i in range(1000):  # "a 1000 rounds to slow down", as the original says
        step = _md5(password if i & 1 else final)
        if i % 3:
            step.update(salt)
        if i % 7:
            step.update(password)
        step.update(final if i & 1 else password)
        final = step.digest()
    groups = ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5))
    encoded = "".join(_crypt64(final[a] << 16 | final[b] << 8 | final[c], 4) for a, b, c in groups)
    return f"$1${salt.decode('ascii')}${encoded}{_crypt64(final[11], 2)}"


def _md5(data: bytes):
    # MD5 is what the format is; usedforsecurity=False keeps it working on FIPS builds.
    return hashlib.md5(data, usedforsecurity=False)


def _crypt64(value: int, chars: int) -> str:
    """crypt(3)'s base-64: six bits at a time, least significant first."""
    return "".join(_CRYPT64[(value >> 6 * i) & 0x3F] for i in range(chars))


def verify_legacy(stored: str, password: str) -> bool:
    """Check ``password`` against an accepted legacy hash; False for any other string."""
    scheme, match = _parse(stored)
    if scheme is None:
        return False
    secret = password.encode("utf-8")
    if scheme == "bcrypt":
        # bcrypt 5 refuses more than 72 bytes; the old cabinets' bcrypt ignored the rest.
        return bcrypt.checkpw(secret[:72], stored.encode("ascii"))
    if scheme == "md5_crypt":
        computed = md5_crypt(secret, match["salt"].encode("ascii"))
        return hmac.compare_digest(computed.encode(), stored.encode())
    passlib = scheme.endswith("passlib")
    expected = _b64(match["hash"], passlib)
    salt = _b64(match["salt"], True) if passlib else match["salt"].encode("utf-8")
    derived = hashlib.pbkdf2_hmac("sha256", secret, salt, int(match["n"]), len(expected))
    return hmac.compare_digest(derived, expected)


# --- import ----------------------------------------------------------------------------------

CONTACT_FIELDS = ("login", "email", "phone")
REQUIRED = ("family_name", "given_name", "password_hash", "source")
FIELDS = CONTACT_FIELDS + REQUIRED + ("middle_name", "region")
_SOURCE = re.compile(r"[\w.:\- ]{1,64}")


class ImportFailed(IdpError):
    """Nothing was imported; ``errors`` lists every problem as ``line N: …``."""

    code = "import_failed"

    def __init__(self, errors: list[str]) -> None:
        super().__init__(f"import refused, {len(errors)} error(s)")
        self.errors = errors


@dataclass(frozen=True)
class ImportReport:
    imported: int
    sources: dict[str, int]
    schemes: dict[str, int]

    def as_dict(self) -> dict:
        return {"imported": self.imported, "sources": self.sources, "schemes": self.schemes}


class LegacyImporter:
    """Loads a legacy cabinet's accounts: every row valid, or nothing written (one
    transaction). Contacts count as confirmed: the old cabinet confirmed them."""

    def __init__(
        self,
        session: Session,
        clock: Callable[[], float] = time.time,
        uow: UnitOfWork | None = None,
    ) -> None:
        self._db = session
        self._clock = clock
        self._uow = uow or SqlUnitOfWork(session)

    def import_records(self, items: Iterable[tuple[int, dict | str]]) -> ImportReport:
        """Import ``(line, record)`` pairs (``(line, error)`` for a row a reader could not
        use; readers: :mod:`idp.legacy_cli`). Fields: ``login`` or ``email``/``phone``,
        ``family_name``, ``given_name``, ``middle_name``, ``region``, ``password_hash``,
        ``source``. Raises :class:`ImportFailed` listing every bad row; a contact held by an
        existing account, or given twice in the file, is a bad row."""
        problems: dict[int, list[str]] = {}
        rows: list[tuple[int, dict]] = []
        seen: dict[tuple[str, str], int] = {}
        for line, raw in items:
            fields, errors = _validate(raw) if isinstance(raw, dict) else (None, [raw])
            for key in _contacts(fields or {}):
                if key in seen:
                    errors.append(f"{key[0]} {key[1]} already given on line {seen[key]}")
                seen.setdefault(key, line)
            if errors:
                problems[line] = errors
            else:
                rows.append((line, fields))
        if not rows and not problems:
            raise ImportFailed(["the file holds no records"])
        with self._uow.transaction():
            for line, error in self._taken(rows):
                problems.setdefault(line, []).append(error)
            if problems:
                raise ImportFailed(
                    [f"line {n}: {'; '.join(e)}" for n, e in sorted(problems.items())]
                )
            now = int(self._clock())
            self._db.add_all(_legacy_user(fields, now) for _, fields in rows)
            try:
                self._db.flush()
            except IntegrityError:
                raise ImportFailed(
                    [
                        "a contact was registered during the import; nothing was imported, "
                        "run it again"
                    ]
                ) from None
        return ImportReport(
            len(rows),
            dict(Counter(f["legacy_source"] for _, f in rows)),
            dict(Counter(identify(f["password_hash"]) for _, f in rows)),
        )

    def _taken(self, rows: list[tuple[int, dict]]) -> Iterator[tuple[int, str]]:
        """Contacts that existing accounts already hold (same transaction as the insert)."""
        wanted = {key: line for line, fields in rows for key in _contacts(fields)}
        keys = list(wanted)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            emails = [v for k, v in chunk if k == "email"]
            phones = [v for k, v in chunk if k == "phone"]
            query = select(User.email, User.phone, User.status).where(
                or_(User.email.in_(emails), User.phone.in_(phones))
            )
            for email, phone, status in self._db.execute(query):
                for key in (("email", email), ("phone", phone)):
                    if key in wanted:
                        owner = "an active account" if status == "active" else "an imported account"
                        yield wanted[key], f"{key[0]} {key[1]} belongs to {owner}"


def _legacy_user(fields: dict, now: int) -> User:
    return User(
        id=str(uuid.uuid4()),
        status="legacy",
        locale="ru",
        created_at=now,
        updated_at=now,
        password_changed_at=0,
        email_verified=bool(fields["email"]),
        phone_verified=bool(fields["phone"]),
        **fields,
    )


def _contacts(fields: dict) -> list[tuple[str, str]]:
    return [(kind, fields[kind]) for kind in ("email", "phone") if fields.get(kind)]


def _validate(raw: dict) -> tuple[dict | None, list[str]]:
    errors = [f"{key}: unknown field" for key in raw if key not in FIELDS]
    text: dict[str, str] = {}
    for key in FIELDS:
        value = raw.get(key)
        if value is not None and not isinstance(value, str):
            errors.append(f"{key}: must be a string")
        text[key] = (value or "").strip() if isinstance(value, str) else ""
    fields: dict = {"email": None, "phone": None}
    if text["login"]:
        try:
            kind, value = parse_login(text["login"])
            fields[kind] = value
        except ValidationError:
            errors.append(f"login: {text['login'][:60]!r} is not a mobile number or e-mail")
    for kind, normalize, what in (
        ("email", normalize_email, "an e-mail address"),
        ("phone", normalize_phone, "a Russian mobile number"),
    ):
        if not text[kind]:
            continue
        try:
            value = normalize(text[kind])
        except ValidationError:
            errors.append(f"{kind}: {text[kind][:60]!r} is not {what}")
            continue
        if fields[kind] not in (None, value):
            errors.append(f"{kind}: differs from the login")
        fields[kind] = value
    if not any(text[key] for key in CONTACT_FIELDS):
        errors.append("a login, email or phone is required")
    for key in ("family_name", "given_name", "middle_name"):
        try:
            fields[key] = check_name(text[key], key, required=key in REQUIRED)
        except ValidationError as exc:
            errors.append(str(exc))
    try:
        fields["region"] = check_region(text["region"]) if text["region"] else None
    except ValidationError:
        errors.append(f"region: {text['region'][:60]!r} is not a federal subject of Russia")
    if not text["password_hash"]:
        errors.append("password_hash is required")
    elif problem := hash_problem(text["password_hash"]):
        errors.append(f"password_hash: {problem}")
    fields["password_hash"] = text["password_hash"]
    if not _SOURCE.fullmatch(text["source"]):
        errors.append("source is required: 1-64 letters, digits, spaces or . : _ -")
    fields["legacy_source"] = text["source"]
    return (None, errors) if errors else (fields, [])


# --- upgrade ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpgradeOutcome:
    """``ok``: the password matched and the account is active now. ``performed``: this call
    wrote the argon2id hash (a parallel call may have won). ``weak``: the reason code of the
    password policy rule the old password breaks (ask for a new one), or ``None``."""

    ok: bool
    performed: bool = False
    weak: str | None = None

    def __bool__(self) -> bool:
        return self.ok


class LegacyUpgrade:
    """Turns a legacy account into an active one on its old password."""

    def __init__(
        self,
        session: Session,
        hasher: PasswordHasher,
        policy: PasswordPolicy | None = None,
        clock: Callable[[], float] = time.time,
        dummy_hash: str | None = None,
        uow: UnitOfWork | None = None,
    ) -> None:
        self._db, self._hasher, self._policy, self._clock = session, hasher, policy, clock
        self._uow = uow or SqlUnitOfWork(session)
        # Verified when there is nothing to verify, so a miss costs about what a check does.
        self._dummy = dummy_hash or bcrypt.hashpw(b"matches nothing", bcrypt.gensalt(10)).decode()

    def upgrade(self, user: User | None, password: str) -> UpgradeOutcome:
        """Verify ``password`` against the legacy hash; on success store an argon2id hash and
        set ``status = "active"`` with one conditional UPDATE (``… WHERE status = 'legacy'``),
        so of parallel upgrades exactly one writes. One unit of work (or a step of the
        caller's)."""
        stored = user.password_hash if user is not None and user.status == "legacy" else None
        if stored is None or identify(stored) is None or len(password) > MAX_PASSWORD_LENGTH:
            verify_legacy(self._dummy, password[:MAX_PASSWORD_LENGTH])
            return UpgradeOutcome(False)
        if not verify_legacy(stored, password):
            return UpgradeOutcome(False)
        user_id, new_hash, now = user.id, self._hasher.hash(password), int(self._clock())
        with self._uow.transaction():
            written = self._db.execute(
                update(User)
                .where(User.id == user_id, User.status == "legacy", User.password_hash == stored)
                .values(
                    status="active",
                    password_hash=new_hash,
                    password_changed_at=now,
                    updated_at=now,
                )
                .execution_options(synchronize_session=False)
            ).rowcount
            status = "active" if written == 1 else None
            if status is None:
                status = self._db.scalar(select(User.status).where(User.id == user_id))
        # synchronize_session=False: the loaded account still shows the legacy state.
        self._db.refresh(user)
        weak = self._weakness(user, password)
        if written == 1:
            return UpgradeOutcome(True, True, weak)
        return UpgradeOutcome(status == "active", False, weak if status == "active" else None)

    def _weakness(self, user: User, password: str) -> str | None:
        if self._policy is None:
            return None
        context = (user.family_name, user.given_name, user.middle_name, user.phone, user.email)
        try:
            self._policy.check(password, context)
        except WeakPassword as exc:
            return exc.reason
        return None

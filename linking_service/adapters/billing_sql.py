"""The billing directory over the service's own database (``billing_accounts`` and
``billing_services``, filled by ``linking_service.billing_import``).

Service secrets (Home Internet passwords, Home Phone PINs) are stored as argon2id hashes only.
Every proof check costs exactly one hash verification, hit or miss.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import re
import secrets
import unicodedata
from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import replace

import phonenumbers
import sqlalchemy as sa
from argon2 import PasswordHasher, Type, extract_parameters
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session, sessionmaker

from linking_service.adapters.sql.db import read_engine, read_only_sessions
from linking_service.adapters.sql.models import BillingAccountRow, BillingServiceRow
from linking_service.domain import BillingAccount, BillingService, ServiceType

_CHUNK = 500  # values per IN (…): well under every driver's bound-parameter limit
# Longest secret worth hashing: the importer refuses longer ones, so a longer guess is wrong.
MAX_SECRET = 128

_PHONE_CHARS = re.compile(r"[^\d\s()+\-.]")
_CONTACT_TYPES = frozenset(
    {
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    }
)


def make_hasher() -> PasswordHasher:
    """argon2id at the OWASP minimum (19 MiB, 2 passes, 1 lane).

    Modest on purpose: this is a cache of the billing systems' data and every import re-hashes
    every secret; online guessing is limited by attempt counters, not by hash cost alone.
    """
    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1, type=Type.ID)


#: glibc's M_MMAP_THRESHOLD, and the bound we fix it at (see release_large_buffers).
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 4 * 1024 * 1024


def release_large_buffers() -> bool:
    """Make glibc return argon2id's 19 MiB work buffer to the system after each verification.

    glibc raises its mmap threshold to the size of the first large block freed, so every later
    19 MiB buffer comes from the verifying thread's heap arena and stays resident there: up to
    one buffer per worker thread (16 × 19 MiB) kept for the life of the process (measured: RSS
    57 → 361 MiB after 16 concurrent proofs, flat with the threshold fixed). Fixing the
    threshold keeps blocks of 4 MiB and more in their own mappings, unmapped when freed. Called
    once by ``linking-service serve``; False (nothing done) where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False


def hash_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as a secret hash, or ``None`` when it can."""
    try:
        params = extract_parameters(value)
    except (InvalidHashError, ValueError):
        params = None
    if params is None or params.type is not Type.ID or len(value) > 255:
        return "not an argon2id hash"
    # Verified on every proof: parameters beyond these would make one proof a denial of service.
    if params.memory_cost > 262_144 or params.time_cost > 10 or params.parallelism > 8:
        return "argon2id parameters too costly to verify"
    return None


def normalize_ru_phone(raw: str, *, contact: bool = False) -> str:
    """A Russian number in any common notation as E.164, or ``ValueError``.

    ``contact=True`` accepts mobile and landline numbers only (what a person can be reached
    on); otherwise any valid Russian number (Home Phone lines). The country code +7 is shared
    with Kazakhstan, so the number must also belong to Russia's numbering plan.
    """
    value = raw.strip() if isinstance(raw, str) else ""
    if not value or len(value) > 32 or _PHONE_CHARS.search(value):
        raise ValueError("not a phone number")
    try:
        number = phonenumbers.parse(value, "RU")
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    if phonenumbers.region_code_for_number(number) != "RU":
        raise ValueError("not a Russian phone number")
    if contact and phonenumbers.number_type(number) not in _CONTACT_TYPES:
        raise ValueError("not a mobile or landline number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def fold_name(value: str | None) -> str:
    """A name as compared: NFC, trimmed, single spaces, case-folded, «ё» read as «е»."""
    text = unicodedata.normalize("NFC", value or "")
    return " ".join(text.split()).casefold().replace("ё", "е")


def _e164(raw: str) -> str | None:
    try:
        return normalize_ru_phone(raw)
    except ValueError:
        return None


def _json_element(column, value: str):
    """``column`` (a JSON list of strings) textually holds ``value``: a portable pre-filter.

    SQLite and PostgreSQL's ``json`` type keep the text SQLAlchemy wrote (``json.dumps``), so the
    element appears there as ``json.dumps(value)``. Callers re-check membership exactly.
    """
    return sa.cast(column, sa.Text).contains(json.dumps(value), autoescape=True)


_ACCOUNTS = BillingAccountRow.__table__
_SERVICES = BillingServiceRow.__table__
# Accounts with their services, outer-joined: one statement, so one snapshot on PostgreSQL
# (autocommit reads) and one round trip, whatever the number of accounts (at most _CHUNK).
_WITH_SERVICES = (
    sa.select(
        _ACCOUNTS.c.number,
        _ACCOUNTS.c.region,
        _ACCOUNTS.c.family_name,
        _ACCOUNTS.c.given_name,
        _ACCOUNTS.c.middle_name,
        _ACCOUNTS.c.phones,
        _ACCOUNTS.c.emails,
        _ACCOUNTS.c.status,
        _SERVICES.c.kind,
        _SERVICES.c.login,
        _SERVICES.c.phone,
    )
    .select_from(_ACCOUNTS.outerjoin(_SERVICES, _SERVICES.c.account_number == _ACCOUNTS.c.number))
    .where(_ACCOUNTS.c.number.in_(sa.bindparam("numbers", expanding=True)))
    .order_by(_ACCOUNTS.c.number, _SERVICES.c.kind, _SERVICES.c.id)
)


class SqlBillingDirectory:
    """``linking_service.ports.BillingDirectory`` over SQLAlchemy sessions."""

    def __init__(
        self, sessions: sessionmaker[Session], hasher: PasswordHasher | None = None
    ) -> None:
        # Reads only, on connections that never wait for a unit of work's write lock.
        self._sessions = read_only_sessions(sessions)
        self._read = read_engine(sessions)
        self.hasher = hasher or make_hasher()
        # Verified on a miss so that a miss costs what a hit costs. Same parameters as the
        # hashes the importer writes with this hasher.
        self._dummy = self.hasher.hash(secrets.token_urlsafe(24))

    # --- lookups -----------------------------------------------------------------------------

    def find_account(self, number: str) -> BillingAccount | None:
        if not isinstance(number, str):
            return None
        return self.find_accounts([number]).get(number)

    def find_accounts(self, numbers: Iterable[str]) -> dict[str, BillingAccount]:
        """The accounts of ``numbers`` that exist, by number (one statement per 500)."""
        wanted = sorted({n for n in numbers if isinstance(n, str)})
        found: dict[str, BillingAccount] = {}
        if not wanted:
            return found
        services: dict[str, list[BillingService]] = {}
        with self._read.connect() as connection:
            for chunk in _chunks(wanted):
                for row in connection.execute(_WITH_SERVICES, {"numbers": chunk}):
                    number = row.number
                    if number not in found:
                        services[number] = []
                        found[number] = BillingAccount(
                            number=number,
                            region=row.region,
                            family_name=row.family_name,
                            given_name=row.given_name,
                            middle_name=row.middle_name,
                            phones=tuple(row.phones or ()),
                            emails=tuple(row.emails or ()),
                            status=row.status,
                        )
                    if row.kind is not None:
                        services[number].append(
                            BillingService(ServiceType(row.kind), row.login, row.phone)
                        )
        return {
            number: replace(account, services=tuple(services[number]))
            for number, account in found.items()
        }

    def accounts_by_phone(self, region: str, phone: str) -> list[BillingAccount]:
        """Accounts in ``region`` listing ``phone`` as a contact or a Home Phone number."""
        e164 = _e164(phone)
        if e164 is None:
            return []
        home_phone = sa.select(BillingServiceRow.account_number).where(
            BillingServiceRow.kind == ServiceType.HOME_PHONE.value,
            BillingServiceRow.phone == e164,
        )
        query = (
            sa.select(BillingAccountRow)
            .where(BillingAccountRow.region == region)
            .where(
                sa.or_(
                    _json_element(BillingAccountRow.phones, e164),
                    BillingAccountRow.number.in_(home_phone),
                )
            )
            .order_by(BillingAccountRow.number)
        )
        with self._sessions() as session:
            accounts = self._accounts(session, session.scalars(query).all())
        return [
            account
            for account in accounts
            if e164 in account.phones
            or any(s.kind is ServiceType.HOME_PHONE and s.phone == e164 for s in account.services)
        ]

    def account_by_service_login(self, login: str) -> BillingAccount | None:
        if not isinstance(login, str) or not login.strip():
            return None
        with self._sessions() as session:
            service = session.scalars(
                sa.select(BillingServiceRow).where(
                    BillingServiceRow.login == login.strip().lower(),
                    BillingServiceRow.kind == ServiceType.HOME_INTERNET.value,
                )
            ).first()
            if service is None:
                return None
            row = session.get(BillingAccountRow, service.account_number)
            return self._accounts(session, [row])[0] if row else None

    # --- proofs ------------------------------------------------------------------------------

    def verify_internet(self, account_number: str | None, login: str, password: str) -> bool:
        """True when ``login`` is a Home Internet service of the account with ``password``."""
        row = None
        if isinstance(login, str) and login.strip():
            with self._sessions() as session:
                row = session.scalars(
                    sa.select(BillingServiceRow).where(
                        BillingServiceRow.login == login.strip().lower(),
                        BillingServiceRow.kind == ServiceType.HOME_INTERNET.value,
                    )
                ).first()
        return self._check(row, account_number, password)

    def verify_phone(self, account_number: str | None, phone: str, pin: str) -> bool:
        """True when ``phone`` is a Home Phone service of the account with ``pin``."""
        row = None
        e164 = _e164(phone) if isinstance(phone, str) else None
        if e164 is not None:
            query = sa.select(BillingServiceRow).where(
                BillingServiceRow.phone == e164,
                BillingServiceRow.kind == ServiceType.HOME_PHONE.value,
            )
            if account_number is not None:
                query = query.where(BillingServiceRow.account_number == account_number)
            with self._sessions() as session:
                row = session.scalars(query.order_by(BillingServiceRow.id)).first()
        return self._check(row, account_number, pin)

    def _check(self, row: BillingServiceRow | None, account_number: str | None, secret) -> bool:
        """Exactly one verification, whatever was found; False unless everything matches."""
        usable = isinstance(secret, str) and 0 < len(secret) <= MAX_SECRET
        found = row is not None and (account_number is None or row.account_number == account_number)
        target = row.secret_hash if found and usable else self._dummy
        try:
            ok = self.hasher.verify(target, secret if usable else "")
        except (VerificationError, InvalidHashError):
            ok = False
        return ok and found and usable

    # --- automatic attachment ----------------------------------------------------------------

    def matching_owner(
        self,
        region: str,
        family_name: str,
        given_name: str,
        middle_name: str | None,
        phones: Sequence[str],
        emails: Sequence[str],
    ) -> list[BillingAccount]:
        """Active accounts whose owner names and region match and that list one of the
        confirmed contacts (for automatic attachment at registration)."""
        wanted_phones = {p for p in (_e164(x) for x in phones) if p}
        wanted_emails = {
            unicodedata.normalize("NFC", e.strip()).lower() for e in emails if e and e.strip()
        }
        family, given = fold_name(family_name), fold_name(given_name)
        middle = fold_name(middle_name)
        if not (wanted_phones or wanted_emails) or not family or not given:
            return []
        contacts = [_json_element(BillingAccountRow.phones, p) for p in sorted(wanted_phones)]
        contacts += [_json_element(BillingAccountRow.emails, e) for e in sorted(wanted_emails)]
        query = (
            sa.select(BillingAccountRow)
            .where(BillingAccountRow.region == region, BillingAccountRow.status == "active")
            .where(sa.or_(*contacts))
            .order_by(BillingAccountRow.number)
        )
        with self._sessions() as session:
            rows = [
                row
                for row in session.scalars(query).all()
                if fold_name(row.family_name) == family
                and fold_name(row.given_name) == given
                and (
                    not middle
                    or not fold_name(row.middle_name)
                    or fold_name(row.middle_name) == middle
                )
                and (wanted_phones & set(row.phones or ()) or wanted_emails & set(row.emails or ()))
            ]
            return self._accounts(session, rows)

    # --- rows to domain ----------------------------------------------------------------------

    @staticmethod
    def _accounts(session: Session, rows: Iterable[BillingAccountRow]) -> list[BillingAccount]:
        rows = list(rows)
        services: dict[str, list[BillingService]] = {row.number: [] for row in rows}
        for chunk in _chunks(list(services)):
            for service in session.scalars(
                sa.select(BillingServiceRow)
                .where(BillingServiceRow.account_number.in_(chunk))
                .order_by(BillingServiceRow.kind, BillingServiceRow.id)
            ):
                services[service.account_number].append(
                    BillingService(
                        kind=ServiceType(service.kind), login=service.login, phone=service.phone
                    )
                )
        return [
            BillingAccount(
                number=row.number,
                region=row.region,
                family_name=row.family_name,
                given_name=row.given_name,
                middle_name=row.middle_name,
                phones=tuple(row.phones or ()),
                emails=tuple(row.emails or ()),
                status=row.status,
                services=tuple(services[row.number]),
            )
            for row in rows
        ]


# --- writing (used by linking_service.billing_import) ---------------------------------------


def _chunks(values: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def service_owners(session: Session, kind: ServiceType, values: Collection[str]) -> dict[str, str]:
    """``{login or Home Phone number: account number}`` for those of ``values`` in use."""
    internet = kind is ServiceType.HOME_INTERNET
    column = BillingServiceRow.login if internet else BillingServiceRow.phone
    owners: dict[str, str] = {}
    for chunk in _chunks(sorted(values)):
        query = sa.select(column, BillingServiceRow.account_number).where(
            column.in_(chunk), BillingServiceRow.kind == kind.value
        )
        owners.update((value, owner) for value, owner in session.execute(query))
    return owners


def upsert_accounts(
    session: Session, accounts: Sequence[tuple[BillingAccount, Sequence[str]]]
) -> int:
    """Write accounts with their services' secret hashes (in ``account.services`` order).

    An existing account is replaced: its fields and all of its services. Returns how many of
    the accounts existed before.
    """
    existing: dict[str, BillingAccountRow] = {}
    for chunk in _chunks([account.number for account, _ in accounts]):
        query = sa.select(BillingAccountRow).where(BillingAccountRow.number.in_(chunk))
        existing.update((row.number, row) for row in session.scalars(query))
        # Replace, not merge: the record is the whole truth about the account's services.
        session.execute(
            sa.delete(BillingServiceRow).where(BillingServiceRow.account_number.in_(chunk))
        )
    for account, _ in accounts:
        row = existing.get(account.number) or BillingAccountRow(number=account.number)
        row.region, row.status = account.region, account.status
        row.family_name, row.given_name = account.family_name, account.given_name
        row.middle_name = account.middle_name
        row.phones, row.emails = list(account.phones), list(account.emails)
        session.add(row)
    session.flush()  # accounts first: services reference them
    session.add_all(
        BillingServiceRow(
            account_number=account.number,
            kind=service.kind.value,
            login=service.login,
            phone=service.phone,
            secret_hash=secret_hash,
        )
        for account, hashes in accounts
        for service, secret_hash in zip(account.services, hashes, strict=True)
    )
    session.flush()
    return len(existing)

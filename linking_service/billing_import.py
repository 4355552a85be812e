"""Load billing accounts and their services from a file: all rows or none.

Format by extension; anything else is refused.

``.csv``: UTF-8 (BOM allowed), comma-separated, header row = line 1, one account per row.
Columns in any order; the first four are required, the rest may be absent or empty::

    number, region, family_name, given_name, middle_name, phones, emails, status,
    internet_login, internet_password, internet_password_hash,
    phone_number, phone_pin, phone_pin_hash

``phones``/``emails`` separate values with ``;``. Any filled ``internet_*`` cell makes a Home
Internet service, any filled ``phone_*`` cell a Home Phone service (one, both or none).

``.jsonl``/``.ndjson``: UTF-8, one JSON object per line, blank lines skipped; the same fields,
strings (``middle_name`` may be null), ``phones``/``emails`` lists of strings, and ``services``
(any number of each kind)::

    {"number": "159000000001", "region": "Пермский край", "family_name": "Иванова",
     "given_name": "Мария", "middle_name": "Петровна", "phones": ["+79990000001"],
     "services": [{"type": "internet", "login": "ivanova.m", "password": "..."},
                  {"type": "phone", "number": "+73422123456", "pin": "4821"}]}

Rules: number exactly 12 ASCII digits; region one of ``linking_service.regions.REGIONS``; names
1-100 characters without control or invisible characters; contact phones Russian mobile or
landline numbers in any notation (stored E.164); e-mails (stored lower-case); status ``active``
(default), ``closed`` or ``blocked``; service login 3-64 of ``A-Z a-z 0-9 . _ @ -`` (stored
lower-case: logins compare case-insensitively); Home Phone number any valid Russian number;
password 1-128 characters, verbatim; PIN 4-8 digits. ``password_hash``/``pin_hash`` may replace
the secret with an argon2id hash made elsewhere (use the directory's parameters, or hits and
misses differ in timing). Logins and Home Phone numbers are unique in the whole directory.

Upsert: a record whose number exists replaces that account, its fields and all its services
(services missing from the record are removed); accounts the file does not name are untouched.
A number appears at most once per file.

If any row is bad nothing is written: ``ImportFailed.errors`` lists every bad row as
``line N: problem; problem`` with the file's line numbers.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from sqlalchemy.orm import Session, sessionmaker

from elk_common.contacts import normalize_email
from linking_service.adapters.billing_sql import (
    MAX_SECRET,
    hash_problem,
    make_hasher,
    normalize_ru_phone,
    service_owners,
    upsert_accounts,
)
from linking_service.adapters.sql.db import transaction
from linking_service.domain import (
    BillingAccount,
    BillingService,
    InvalidArgument,
    ServiceType,
    check_account_number,
)
from linking_service.regions import check_region

REQUIRED = ("number", "region", "family_name", "given_name")
CSV_COLUMNS = REQUIRED + (
    "middle_name",
    "phones",
    "emails",
    "status",
    "internet_login",
    "internet_password",
    "internet_password_hash",
    "phone_number",
    "phone_pin",
    "phone_pin_hash",
)
_RECORD_KEYS = frozenset(REQUIRED + ("middle_name", "phones", "emails", "status", "services"))
_SERVICE_KEYS = {
    ServiceType.HOME_INTERNET: frozenset({"type", "login", "password", "password_hash"}),
    ServiceType.HOME_PHONE: frozenset({"type", "number", "pin", "pin_hash"}),
}
STATUSES = ("active", "closed", "blocked")
_LOGIN = re.compile(r"[A-Za-z0-9._@-]{3,64}")
_PIN = re.compile(r"[0-9]{4,8}")


class ImportFailed(Exception):
    """The file was refused; ``errors`` lists every problem (``line N: …``)."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__(f"import refused, {len(errors)} error(s)")
        self.errors = errors


@dataclass(frozen=True)
class ImportReport:
    accounts: int  # records written
    created: int
    updated: int
    services: int

    def __str__(self) -> str:
        return (
            f"imported {self.accounts} billing account(s): {self.created} new, "
            f"{self.updated} updated; {self.services} service(s)"
        )


@dataclass(frozen=True)
class _Record:
    line: int
    account: BillingAccount
    secrets: list[tuple[str | None, str | None]]  # per service: (secret, or a hash made elsewhere)


# --- reading -------------------------------------------------------------------------------


def import_file(
    path: str | Path, sessions: sessionmaker[Session], hasher: PasswordHasher | None = None
) -> ImportReport:
    """Validate the whole file, then write it in one transaction; ``ImportFailed`` if bad."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise ImportFailed(
            [
                f"{path.name}: unsupported file type {suffix or '(none)'!r}; "
                "use .csv, .jsonl or .ndjson"
            ]
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFailed([f"{path.name}: cannot read: {exc.strerror or exc}"]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFailed([f"line {line}: not UTF-8 text"]) from None
    items = _read_csv(text) if suffix == ".csv" else _read_jsonl(text)
    return import_records(items, sessions, hasher, csv_style=suffix == ".csv")


def _read_csv(text: str) -> Iterator[tuple[int, dict | str]]:
    """(line, record) pairs in the JSONL shape, or (line, error) for unusable rows."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        yield 1, f"header: {exc}"
        return
    if not header:
        yield 1, "missing header row"
        return
    columns = [unicodedata.normalize("NFC", name).strip().lower() for name in header]
    problems = [f"unknown column {name!r}" for name in columns if name not in CSV_COLUMNS]
    problems += [
        f"duplicate column {n!r}" for n in sorted({c for c in columns if columns.count(c) > 1})
    ]
    problems += [f"missing column {name!r}" for name in REQUIRED if name not in columns]
    if problems:
        yield 1, "; ".join(problems)
        return
    last = reader.line_num
    while True:
        start = last + 1  # a quoted field may span lines: report where the record starts
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield start, f"malformed CSV: {exc}"
            return
        last = reader.line_num
        if not cells or not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(columns):
            yield start, f"expected {len(columns)} fields, found {len(cells)}"
            continue
        yield start, _csv_record(dict(zip(columns, cells, strict=True)))


def _csv_record(row: dict[str, str]) -> dict:
    def split(name: str) -> list[str]:
        return [part for part in (row.get(name) or "").split(";") if part.strip()]

    record = {key: row[key] for key in REQUIRED}
    record["middle_name"] = row.get("middle_name") or None
    record["phones"], record["emails"] = split("phones"), split("emails")
    record["status"] = row.get("status") or None
    services = []
    for kind, fields in (
        (ServiceType.HOME_INTERNET, ("login", "password", "password_hash")),
        (ServiceType.HOME_PHONE, ("number", "pin", "pin_hash")),
    ):
        values = {f: row.get(f"{kind.value}_{f}") or "" for f in fields}
        if any(values.values()):
            services.append({"type": kind.value, **{k: v for k, v in values.items() if v}})
    record["services"] = services
    return record


def _read_jsonl(text: str) -> Iterator[tuple[int, dict | str]]:
    # split("\n"), not splitlines(): JSON strings may hold U+2028, which is no line break.
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except ValueError as exc:
            yield line, f"not JSON: {getattr(exc, 'msg', exc)}"
            continue
        yield line, value if isinstance(value, dict) else "a line must hold a JSON object"


# --- validation ----------------------------------------------------------------------------


def _text(raw: dict, key: str, label: str, errors: list[str]) -> str | None:
    """A string field, ``None`` when absent or empty; other JSON types are an error."""
    value = raw.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    errors.append(f"{label}: must be a string")
    return None


def _checked(raw: dict, key: str, check, message: str, errors: list[str]) -> str:
    """A string field passed through a domain check; ``message`` formats the bad value."""
    before = len(errors)
    value = (_text(raw, key, key, errors) or "").strip()
    if len(errors) == before:
        try:
            return check(value)
        except InvalidArgument:
            errors.append(f"{key}: " + message.format(repr(value[:60])))
    return value


def _name(raw: dict, key: str, errors: list[str], required: bool) -> str | None:
    value = unicodedata.normalize("NFC", _text(raw, key, key, errors) or "").strip()
    if not value:
        if required:
            errors.append(f"{key}: required")
    elif len(value) > 100:
        errors.append(f"{key}: longer than 100 characters")
    # Control, format (zero-width, bidi), separators other than the space, unassigned.
    elif any(ch != " " and unicodedata.category(ch)[0] in "CZ" for ch in value):
        errors.append(f"{key}: contains control or invisible characters")
    return value or None


def _service(raw, index: int, csv_style: bool, errors: list[str]):
    """(BillingService, secret, secret_hash), or None with ``errors`` extended."""
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind not in ("internet", "phone"):
        errors.append(f"services[{index}]: must be an object with type 'internet' or 'phone'")
        return None
    kind = ServiceType(kind)

    def label(key: str) -> str:  # CSV column names, or the JSON path
        return f"{kind.value}_{key}" if csv_style else f"services[{index}].{key}"

    before = len(errors)
    errors.extend(f"{label(k)}: unknown field" for k in sorted(set(raw) - _SERVICE_KEYS[kind]))
    internet = kind is ServiceType.HOME_INTERNET
    name, secret_key = ("login", "password") if internet else ("number", "pin")
    hash_key = f"{secret_key}_hash"
    value = (_text(raw, name, label(name), errors) or "").strip()
    secret = _text(raw, secret_key, label(secret_key), errors)
    secret_hash = _text(raw, hash_key, label(hash_key), errors)
    login = phone = None
    if not value:
        errors.append(f"{label(name)}: required")
    elif internet:
        login = value.lower()
        if not _LOGIN.fullmatch(value):
            errors.append(f"{label(name)}: 3-64 characters of A-Z a-z 0-9 . _ @ -")
    else:
        try:
            phone = normalize_ru_phone(value)
        except ValueError as exc:
            errors.append(f"{label(name)}: {exc} ({value[:40]!r})")
    if secret is not None and secret_hash is not None:
        errors.append(f"{label(secret_key)}: give either the secret or its hash, not both")
    elif secret_hash is not None:
        if problem := hash_problem(secret_hash):
            errors.append(f"{label(hash_key)}: {problem}")
    elif secret is None:
        errors.append(f"{label(secret_key)}: required (or {label(hash_key)})")
    elif internet and len(secret) > MAX_SECRET:  # passwords are taken verbatim
        errors.append(f"{label(secret_key)}: 1-{MAX_SECRET} characters")
    elif not internet:
        secret = secret.strip()
        if not _PIN.fullmatch(secret):
            errors.append(f"{label(secret_key)}: 4-8 digits")
    if len(errors) > before:
        return None
    return BillingService(kind, login=login, phone=phone), secret, secret_hash


def _contacts(raw: dict, key: str, errors: list[str]) -> list[str]:
    values = raw.get(key) or []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        errors.append(f"{key}: must be a list of strings")
        return []
    result: list[str] = []
    for value in values:
        try:
            if key == "phones":
                normal = normalize_ru_phone(value, contact=True)
            else:
                normal = normalize_email(value)
        except ValueError as exc:  # elk_common's InvalidValue is one too
            errors.append(f"{key}: {value.strip()[:60]!r} is {exc}")
        else:
            if normal not in result:
                result.append(normal)
    return result


def _validate(line: int, raw: dict, csv_style: bool) -> tuple[_Record | None, list[str]]:
    errors = [f"{key}: unknown field" for key in sorted(set(raw) - _RECORD_KEYS)]
    number = _checked(
        raw, "number", check_account_number, "must be exactly 12 digits, got {}", errors
    )
    region = _checked(raw, "region", check_region, "{} is not a federal subject of Russia", errors)
    family = _name(raw, "family_name", errors, True)
    given = _name(raw, "given_name", errors, True)
    middle = _name(raw, "middle_name", errors, False)
    phones, emails = _contacts(raw, "phones", errors), _contacts(raw, "emails", errors)
    status = (_text(raw, "status", "status", errors) or "active").strip().lower()
    if status not in STATUSES:
        errors.append(f"status: must be one of {', '.join(STATUSES)}")
    services_raw = raw.get("services") or []
    if not isinstance(services_raw, list):
        errors.append("services: must be a list")
        services_raw = []
    services = [_service(item, i, csv_style, errors) for i, item in enumerate(services_raw)]
    if errors:
        return None, errors
    account = BillingAccount(
        number,
        region,
        family,
        given,
        middle,
        tuple(phones),
        tuple(emails),
        status,
        tuple(service for service, _, _ in services),
    )
    return _Record(line, account, [(secret, hashed) for _, secret, hashed in services]), []


# --- writing -------------------------------------------------------------------------------


def import_records(
    items: Iterable[tuple[int, dict | str]],
    sessions: sessionmaker[Session],
    hasher: PasswordHasher | None = None,
    *,
    csv_style: bool = False,
) -> ImportReport:
    """Validate (line, record) pairs, check them against the database, then upsert all."""
    hasher = hasher or make_hasher()
    problems: dict[int, list[str]] = {}
    records: list[_Record] = []
    seen: tuple[dict[str, int], ...] = ({}, {}, {})  # numbers, logins, Home Phone numbers
    for line, raw in items:
        if isinstance(raw, str):
            problems.setdefault(line, []).append(raw)
            continue
        record, errors = _validate(line, raw, csv_style)
        if record is not None:
            errors = _duplicates(record, *seen)
            records.append(record)
        if errors:
            problems.setdefault(line, []).extend(errors)
    if not records and not problems:
        raise ImportFailed(["the file holds no records"])
    with sessions() as session:
        for line, error in _conflicts(session, records):
            problems.setdefault(line, []).append(error)
    if problems:
        raise ImportFailed([f"line {n}: {'; '.join(e)}" for n, e in sorted(problems.items())])
    # Hash outside the transaction: at OWASP cost a big file takes a while, and SQLite's
    # write lock should not be held for that long.
    hashes = [[h or hasher.hash(secret) for secret, h in r.secrets] for r in records]
    with transaction(sessions) as session:
        # Re-checked inside the writing transaction: another import may have run meanwhile.
        conflicts = list(_conflicts(session, records))
        if conflicts:
            raise ImportFailed([f"line {n}: {e}" for n, e in conflicts])
        updated = upsert_accounts(
            session, [(r.account, h) for r, h in zip(records, hashes, strict=True)]
        )
    return ImportReport(
        accounts=len(records),
        created=len(records) - updated,
        updated=updated,
        services=sum(map(len, hashes)),
    )


def _duplicates(record: _Record, numbers: dict, logins: dict, phones: dict) -> list[str]:
    errors, number = [], record.account.number
    if number in numbers:
        errors.append(f"number: {number} already given on line {numbers[number]}")
    numbers.setdefault(number, record.line)
    for service in record.account.services:
        for key, seen, what in (
            (service.login, logins, "internet login"),
            (service.phone, phones, "Home Phone number"),
        ):
            if key is not None and key in seen:
                errors.append(f"{what} {key!r} already given on line {seen[key]}")
            if key is not None:
                seen.setdefault(key, record.line)
    return errors


def _conflicts(session, records: list[_Record]) -> Iterator[tuple[int, str]]:
    """Logins and Home Phone numbers held by accounts this file does not replace."""
    numbers = {r.account.number for r in records}
    for kind, what in (
        (ServiceType.HOME_INTERNET, "internet login"),
        (ServiceType.HOME_PHONE, "Home Phone number"),
    ):
        wanted = {
            s.login if kind is ServiceType.HOME_INTERNET else s.phone: r.line
            for r in records
            for s in r.account.services
            if s.kind is kind
        }
        owners = service_owners(session, kind, wanted)
        yield from sorted(
            (wanted[value], f"{what} {value!r} belongs to account {owner}")
            for value, owner in owners.items()
            if owner not in numbers
        )

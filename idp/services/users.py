"""Accounts: creation by an operator (``idp users create``) and lookup by login."""

from __future__ import annotations

import time
import unicodedata
import uuid
from collections.abc import Callable

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from idp.adapters.sql.models import User
from idp.domain.contacts import parse_login
from idp.domain.errors import Conflict, ValidationError
from idp.domain.regions import check_region
from idp.persistence import UnitOfWork
from idp.services.audit import AuditService
from idp.services.passwords import MAX_PASSWORD_LENGTH, PasswordHasher

MIN_PASSWORD_LENGTH = 8
_BY_ID = select(User.__table__).where(User.__table__.c.id == bindparam("id"))


_NAME_PUNCTUATION = "-' ’"
_CYRILLIC = set("абвгдеёжзийклмнопрстуфхцчшщъыьэюя")
_LATIN = set("abcdefghijklmnopqrstuvwxyz")


def check_name(value: str | None, field: str, required: bool = True) -> str | None:
    """A person's name: Cyrillic or Latin letters, hyphens, apostrophes and spaces; trimmed,
    NFC-normalised, at most 100 characters. Control and invisible characters, digits, markup
    and words that mix Cyrillic and Latin letters (homoglyph spoofing) are refused."""
    value = unicodedata.normalize("NFC", (value or "").strip())
    if not value:
        if required:
            raise ValidationError(f"{field} is required", field)
        return None
    if len(value) > 100:
        raise ValidationError(f"{field} is longer than 100 characters", field)
    for word in value.replace("-", " ").replace("'", " ").replace("’", " ").split():
        letters = set(word.lower())
        if not letters <= _CYRILLIC | _LATIN:
            raise ValidationError(f"{field} may hold only letters, hyphens and apostrophes", field)
        if letters & _CYRILLIC and letters & _LATIN:
            raise ValidationError(f"{field} mixes Cyrillic and Latin letters", field)
    if not all(ch.isalpha() or ch in _NAME_PUNCTUATION for ch in value):
        raise ValidationError(f"{field} may hold only letters, hyphens and apostrophes", field)
    if "  " in value:
        raise ValidationError(f"{field} has repeated spaces", field)
    return value


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(f"the password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(f"the password allows at most {MAX_PASSWORD_LENGTH} characters")


class UserService:
    def __init__(
        self,
        session: Session,
        uow: UnitOfWork,
        hasher: PasswordHasher,
        clock: Callable[[], float] = time.time,
        audit: AuditService | None = None,
    ) -> None:
        self._audit = audit or AuditService.in_memory(clock)
        self._db = session
        self._uow = uow
        self._hasher = hasher
        self._clock = clock

    def create(
        self,
        login: str,
        family_name: str,
        given_name: str,
        password: str,
        middle_name: str | None = None,
        locale: str = "ru",
        region: str | None = None,
        auto_attach: bool = False,
        operator: str | None = None,
    ) -> User:
        """An account, its login confirmed. ``auto_attach``: search for its billing accounts
        as registration does (:mod:`idp.services.auto_attach`; ``region`` then matters)."""
        kind, value = parse_login(login)
        check_password(password)
        now = int(self._clock())
        user = User(
            id=str(uuid.uuid4()),
            family_name=check_name(family_name, "family_name"),
            given_name=check_name(given_name, "given_name"),
            middle_name=check_name(middle_name, "middle_name", required=False),
            email=value if kind == "email" else None,
            email_verified=kind == "email",
            phone=value if kind == "phone" else None,
            phone_verified=kind == "phone",
            password_hash=self._hasher.hash(password),
            locale=locale,
            status="active",
            created_at=now,
            updated_at=now,
            password_changed_at=now,
            region=check_region(region) if region else None,
            auto_attach_pending_since=now if auto_attach else None,
        )
        with self._uow.transaction():
            self._db.add(user)
            try:
                self._db.flush()
            except IntegrityError:
                raise Conflict("an account with this login already exists") from None
            self._audit.record(
                "account.registered", subject=user.id, operator=operator, details={"via": "cli"}
            )
        return user

    def get(self, user_id: str) -> User | None:
        return self._db.get(User, user_id)

    def read(self, user_id: str) -> User | None:
        """The account as a detached record, to read only (the token endpoint): one prebuilt
        Core SELECT, without the ORM's loading and identity map; :meth:`get` for changes."""
        row = self._db.execute(_BY_ID, {"id": user_id}).first()
        return User(**row._mapping) if row is not None else None

    def finish_without_attachment(self, user: User) -> None:
        """«Завершить регистрацию без привязки лицевого счета» (help pages, «Третий шаг»):
        record the choice once; the main page then offers only the limited services."""
        with self._uow.transaction():
            if user.attach_skipped_at is None:
                user.attach_skipped_at = int(self._clock())

    def find_by_login(self, login: str) -> User | None:
        """The active account whose *confirmed* e-mail or phone is ``login``."""
        try:
            kind, value = parse_login(login)
        except ValidationError:
            return None
        if kind == "email":
            query = select(User).where(User.email == value, User.email_verified.is_(True))
        else:
            query = select(User).where(User.phone == value, User.phone_verified.is_(True))
        return self._db.scalar(query.where(User.status == "active"))

    def find_any(self, login: str) -> User | None:
        """The account whose e-mail or phone is ``login``, confirmed or not, in any state
        (the support desk and the audit export)."""
        try:
            kind, value = parse_login(login)
        except ValidationError:
            return None
        column = User.email if kind == "email" else User.phone
        return self._db.scalar(select(User).where(column == value))

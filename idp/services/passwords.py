"""Password hashing with argon2id at the OWASP minimum (m=19 MiB, t=2, p=1)."""

from __future__ import annotations

import unicodedata

from argon2 import PasswordHasher as _Argon2
from argon2 import Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MAX_PASSWORD_LENGTH = 128


def prepare(password: str) -> str:
    """NFKC-normalise (NIST SP 800-63B §5.1.1.2) so the same password typed on another
    keyboard layout or device still matches."""
    return unicodedata.normalize("NFKC", password)


class PasswordHasher:
    def __init__(self, memory_kib: int = 19456, time_cost: int = 2, parallelism: int = 1) -> None:
        self._argon = _Argon2(
            time_cost=time_cost,
            memory_cost=memory_kib,
            parallelism=parallelism,
            hash_len=32,
            salt_len=16,
            type=Type.ID,
        )
        # Verified against when the login is unknown, so every failure costs the same time
        # (OIDC Core §16.12, checklist item 29).
        self._dummy = self._argon.hash("dummy password that matches nothing")

    def hash(self, password: str) -> str:
        if len(password) > MAX_PASSWORD_LENGTH:
            raise ValueError("password too long")
        return self._argon.hash(prepare(password))

    def verify(self, stored: str | None, password: str) -> bool:
        """Constant-cost check; a missing hash still spends one verification."""
        if len(password) > MAX_PASSWORD_LENGTH:
            # Refused before hashing (checklist item 48), yet after the same work as a miss.
            self._verify(self._dummy, "x")
            return False
        if stored is None:
            self._verify(self._dummy, prepare(password))
            return False
        return self._verify(stored, prepare(password))

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._argon.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self._argon.check_needs_rehash(stored)
        except InvalidHashError:
            return True

"""What a chosen password must not be: NIST SP 800-63B-4 §3.1.1.2 (Rev. 3 §5.1.1.2, whose
examples are quoted below) and OWASP ASVS 5.0 V6.2.

Applied when a person picks a password (registration, recovery, change), never at sign-in:

* 8 to 128 characters, counted in Unicode code points after NFKC (ASVS V6.2.1 sets the minimum
  at 8; the hasher normalises the same way, :func:`idp.services.passwords.prepare`); spaces
  and every Unicode character allowed, Cyrillic included;
* not on the list of commonly used passwords, whatever the letter case ("passwords obtained
  from previous breach corpuses"), shipped in ``idp/data``;
* not the user's own name parts, phone number or e-mail address, nor containing one of them,
  nor the service's name «Ростелеком», «ЕЛК» ("context-specific words, such as the name of
  the service, the username, and derivatives thereof");
* not repetitive or sequential ("aaaaaa", "1234abcd"; keyboard rows as well).

No composition rules (§3.1.1.2). Words are also compared as typed on the other keyboard layout
(``ghbdtn`` is «привет» on a Latin layout) and Russian names also in Latin transliteration, the
usual ways Russian users disguise them.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from importlib import resources

from idp.domain.errors import ValidationError
from idp.services.passwords import MAX_PASSWORD_LENGTH
from idp.services.users import MIN_PASSWORD_LENGTH

MESSAGES = {
    "too_short": f"Пароль должен содержать не менее {MIN_PASSWORD_LENGTH} символов",
    "too_long": f"Пароль должен содержать не более {MAX_PASSWORD_LENGTH} символов",
    "common": "Пароль слишком распространён",
    "personal": "Пароль не должен содержать ваше имя, телефон или e-mail",
    "service_name": "Пароль не должен содержать название сервиса: «Ростелеком» или «ЕЛК»",
    "repetitive": "Пароль не должен состоять из повторов или простых последовательностей "
    "символов, например «aaaaaaaa», «12345678» или «qwertyui»",
}

# Long names are refused anywhere in a password; short ones would also match ordinary words
# («белка», "yelkin"), so they are refused only when the rest of the password has no letter.
_SERVICE_LONG = ("ростелеком", "rostelecom", "rostelekom")
_SERVICE_SHORT = ("елк", "elk")
# The same keys on the Russian (ЙЦУКЕН) and Latin (QWERTY) layouts.
_LAT_KEYS = "`qwertyuiop[]asdfghjkl;'zxcvbnm,."
_CYR_KEYS = "ёйцукенгшщзхъфывапролджэячсмитьбю"
_TO_CYR = str.maketrans(_LAT_KEYS, _CYR_KEYS)
_TO_LAT = str.maketrans(_CYR_KEYS, _LAT_KEYS)
# Two common transliterations (passport style and informal) of Russian names.
_TRANSLIT = dict(zip("абвгдезиклмнопрстуфыэ", "abvgdeziklmnoprstufye", strict=True))
_TRANSLIT.update(ж="zh", ъ="", ь="")
_TRANSLIT_A = {
    **_TRANSLIT,
    "й": "y",
    "х": "kh",
    "ц": "ts",
    "ч": "ch",
    "ш": "sh",
    "щ": "shch",
    "ю": "yu",
    "я": "ya",
}
_TRANSLIT_B = {
    **_TRANSLIT,
    "й": "i",
    "х": "h",
    "ц": "c",
    "ч": "ch",
    "ш": "sh",
    "щ": "sch",
    "ю": "ju",
    "я": "ja",
}
# Runs along these rows (either direction) make a "simple sequence".
_ROWS = (
    "1234567890-=",
    "0123456789",
    "abcdefghijklmnopqrstuvwxyz",
    "qwertyuiop[]",
    "asdfghjkl;'",
    "zxcvbnm,./",
    "абвгдежзийклмнопрстуфхцчшщъыьэюя",
    "йцукенгшщзхъ",
    "фывапролджэ",
    "ячсмитьбю.",
)
_NEXT = {(row[i], row[i + 1]) for row in _ROWS for i in range(len(row) - 1)}
_NEXT |= {(b, a) for a, b in _NEXT}
_PHONE_CHARS = re.compile(r"[\d\s()+\-.]+")
_SEPARATORS = re.compile(r"[\s\-().+_]")


class WeakPassword(ValidationError):
    """The password breaks the policy. ``reason`` is machine-readable (a key of
    :data:`MESSAGES`); ``message_ru`` is shown to the user next to the password field."""

    code = "weak_password"

    def __init__(self, reason: str, message_ru: str | None = None) -> None:
        self.reason = reason
        self.message_ru = message_ru or MESSAGES[reason]
        super().__init__(self.message_ru, field="password")


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")


def _translit(word: str, table: dict[str, str]) -> str:
    return "".join(table.get(ch, ch) for ch in word)


def _context_words(context: Iterable[str | None]) -> set[str]:
    """The words a password must not be built on: name parts (and their transliterations),
    the e-mail address and its local part, the phone number in its usual forms."""
    words: set[str] = set()
    for item in context:
        value = _fold(item or "").strip()
        if not value:
            continue
        if "@" in value:
            local = value.split("@", 1)[0]
            words |= {value, local, *re.split(r"[._+\-]", local)}
        elif _PHONE_CHARS.fullmatch(value) and len(digits := re.sub(r"\D", "", value)) >= 7:
            # E.164 +79991234567, the national 10-digit form, 8-prefixed form; the last seven
            # digits are contained in every other form, so they catch the rest.
            national = digits[-10:]
            words |= {digits, national, "8" + national, digits[-7:]}
        else:
            parts = [p for p in re.split(r"[\s\-'’.]+", value) if p]
            for part in [*parts, "".join(parts)]:
                words |= {part, _translit(part, _TRANSLIT_A), _translit(part, _TRANSLIT_B)}
    return {w for w in words if len(w) >= 3}


def _variants(password: str) -> set[str]:
    """The folded password as typed, as if typed on the other layout, and without separators."""
    folded = _fold(password)
    variants = {folded, folded.strip(), folded.translate(_TO_LAT), folded.translate(_TO_CYR)}
    return variants | {_SEPARATORS.sub("", v) for v in variants}


def _built_on(candidate: str, word: str, anywhere: bool) -> bool:
    """``candidate`` is ``word``, contains it (when ``anywhere``), or is it decorated with
    digits and symbols only (``elk2024!``)."""
    if word not in candidate:
        return False
    return (
        candidate == word or anywhere or not any(ch.isalpha() for ch in candidate.replace(word, ""))
    )


def _repetitive(text: str) -> bool:
    """One short unit repeated (``aaaaaaaa``, ``abababab``, ``qweqweqwe``), at most two
    distinct characters, or nothing but runs of 3+ along the alphabet, digits or a keyboard
    row in either direction (``12345678``, ``1234abcd``, ``qwerty123``, ``йцукенгш``)."""
    if len(set(text)) <= 2:
        return True
    if any(text == (text[:p] * (len(text) // p + 1))[: len(text)] for p in range(1, 5)):
        return True
    run = 1
    for prev, cur in zip(text, text[1:], strict=False):
        if (prev, cur) in _NEXT:
            run += 1
        elif run < 3:
            return False
        else:
            run = 1
    return run >= 3


class PasswordPolicy:
    """Checks a chosen password; ``common`` holds lower-case (casefolded) passwords."""

    def __init__(self, common: frozenset[str]) -> None:
        self._common = common

    @classmethod
    def load_default(cls) -> PasswordPolicy:
        """The policy with the packaged list (``idp/data/common_passwords.txt``)."""
        return cls(_packaged_list())

    @property
    def common(self) -> frozenset[str]:
        """The blocklist, casefolded."""
        return self._common

    def check(self, password: str, context: Sequence[str | None] = ()) -> None:
        """Raise :class:`WeakPassword` for the first rule ``password`` breaks. ``context``:
        the user's family, given and middle names, phone and e-mail, as entered or stored."""
        normal = unicodedata.normalize("NFKC", password)
        if len(normal) < MIN_PASSWORD_LENGTH:
            raise WeakPassword("too_short")
        # The raw length counts too: the hasher refuses more than the maximum before it
        # normalises (combining marks can shrink a password under NFKC).
        if max(len(normal), len(password)) > MAX_PASSWORD_LENGTH:
            raise WeakPassword("too_long")
        variants = _variants(password)
        words = _context_words(context)
        if any(_built_on(v, w, len(w) >= 4) for v in variants for w in words):
            raise WeakPassword("personal")
        if any(_built_on(v, w, True) for v in variants for w in _SERVICE_LONG) or any(
            _built_on(v, w, False) for v in variants for w in _SERVICE_SHORT
        ):
            raise WeakPassword("service_name")
        if any(v in self._common for v in variants):
            raise WeakPassword("common")
        if _repetitive(_fold(password)):
            raise WeakPassword("repetitive")


@functools.cache
def _packaged_list() -> frozenset[str]:
    text = resources.files("idp").joinpath("data/common_passwords.txt").read_text("utf-8")
    return frozenset(
        _fold(line.strip()) for line in text.splitlines() if line.strip() and line[0] != "#"
    )

"""Password policy (NIST SP 800-63B §3.1.1.2): each rule refuses what it should and nothing
more. Rules are tested one at a time against an empty blocklist, the list on its own."""

from __future__ import annotations

from importlib import resources

import pytest

from idp.domain.errors import ValidationError
from idp.services.password_policy import MESSAGES, PasswordPolicy, WeakPassword

CONTEXT = ["Петров", "Иван", "Сергеевич", "+7 (912) 345-67-80", "ivan.petrov@example.ru"]


@pytest.fixture(scope="module")
def default() -> PasswordPolicy:
    return PasswordPolicy.load_default()


@pytest.fixture(scope="module")
def rules() -> PasswordPolicy:
    """Every rule but the blocklist."""
    return PasswordPolicy(frozenset())


def refused(policy: PasswordPolicy, password: str, context=CONTEXT) -> str:
    with pytest.raises(WeakPassword) as caught:
        policy.check(password, context)
    return caught.value.reason


# --- the error -------------------------------------------------------------------------------


def test_weak_password_is_a_validation_error_with_a_russian_message(default):
    with pytest.raises(ValidationError) as caught:
        default.check("1234567")
    error = caught.value
    assert isinstance(error, WeakPassword)
    assert error.reason == "too_short"
    assert error.message_ru == "Пароль должен содержать не менее 8 символов"
    assert str(error) == error.message_ru
    assert error.field == "password"
    assert error.code == "weak_password"


def test_every_reason_has_a_russian_message():
    assert set(MESSAGES) == {
        "too_short",
        "too_long",
        "common",
        "personal",
        "service_name",
        "repetitive",
    }
    assert MESSAGES["common"] == "Пароль слишком распространён"
    assert MESSAGES["personal"] == "Пароль не должен содержать ваше имя, телефон или e-mail"
    assert all(any("а" <= ch <= "я" for ch in text) for text in MESSAGES.values())


# --- length ----------------------------------------------------------------------------------


def test_length_bounds(rules):
    assert refused(rules, "Kx9#mQ2") == "too_short"  # 7
    rules.check("Kx9#mQ2v", CONTEXT)  # 8
    rules.check(("Kx9#mQ2v" * 16)[:127] + "z", CONTEXT)  # 128
    assert refused(rules, ("Kx9#mQ2v" * 17)[:129]) == "too_long"  # 129


def test_length_counts_code_points_after_nfkc(rules):
    # "ﬁ" (one code point) is "fi" under NFKC: 7 typed characters make 8.
    rules.check("ﬁ-Zq7#w", CONTEXT)
    # Eight Cyrillic letters are eight characters, though sixteen UTF-8 bytes.
    rules.check("жёлудьщц", CONTEXT)
    assert refused(rules, "жёлудьщ") == "too_short"


def test_combining_marks_cannot_slip_past_the_hasher_limit(rules):
    # 129 code points as typed, 128 after NFKC composes "е" + U+0301 into "é".
    password = "е\u0301" + ("Kx9#mQ2v" * 16)[:127]
    assert refused(rules, password) == "too_long"


# --- the blocklist ---------------------------------------------------------------------------


def test_packaged_list_has_at_least_ten_thousand_entries(default):
    assert len(default.common) >= 10_000
    text = resources.files("idp").joinpath("data/common_passwords.txt").read_text("utf-8")
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert any("zxcvbn" in line for line in header)
    assert any("MIT" in line for line in header)
    entries = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert entries[:3] == ["123456", "password", "12345678"]  # most frequent first


@pytest.mark.parametrize(
    "password",
    [
        "password",
        "PassWord",
        "PASSWORD",
        "iloveyou",
        "sunshine",
        "baseball",
        "trustno1",
        "1qaz2wsx",
    ],
)
def test_common_passwords_are_refused_in_any_case(default, password):
    assert refused(default, password, []) == "common"


def test_common_password_typed_on_the_russian_layout_is_refused(default):
    # "зфыыцщкв" is "password" with the keyboard left on ЙЦУКЕН.
    assert refused(default, "зфыыцщкв", []) == "common"


def test_uncommon_password_passes_the_blocklist(default):
    default.check("tangerine-lamp-oxide", [])


# --- context words ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "Petrov1985!",  # surname, transliterated
        "иван-грозный-1",  # given name, as written
        "ivan-the-great",  # given name, transliterated
        "SERGEEVICH_77",  # middle name, transliterated, upper case
        "Bdfy_1985_xyz",  # «Иван» typed with the keyboard left on the Latin layout
        "+79123456780",  # the phone, E.164
        "89123456780",  # the phone, national with 8
        "tel9123456780",  # the 10-digit national number inside
        "my3456780pin",  # the last seven digits
        "912-345-67-80!",  # with separators
        "ivan.petrov@example.ru",  # the e-mail address
        "ivan.petrov2024",  # its local part
    ],
)
def test_context_words_are_refused(rules, password):
    assert refused(rules, password) == "personal"


def test_context_words_pass_when_absent(rules):
    rules.check("Petrov1985!", ["Сидоров", "Алексей", None, "+79990001122", "a.sidorov@mail.ru"])
    rules.check("ivan-the-great", [])


def test_short_context_words_refused_only_as_the_whole_password(rules):
    # «Ким» is three letters: refused as the password dressed in digits, not inside words.
    assert refused(rules, "ким2024!!", ["Ким", "Ли"]) == "personal"
    rules.check("Joachim Kimberly-7", ["Ким", "Ли"])


# --- service names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "Ростелеком2024",
        "rostelecom!",
        "my-RosTeleCom-pass",
        "hjcntktrjv1",
        "ЕЛК12345",
        "elk-2024!",
        "ELK_ELK_99",
    ],
)
def test_service_names_are_refused(rules, password):
    assert refused(rules, password, []) == "service_name"


def test_service_short_names_inside_words_pass(rules):
    rules.check("Белка и стрелка", [])
    rules.check("Welkin-orbit-42", [])


# --- repetition and sequences ----------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "aaaaaaaa",
        "00000000",
        "ЖЖЖЖЖЖЖЖЖЖ",
        "abababab",
        "qweqweqwe",
        "12121212",
        "12345678",
        "87654321",
        "abcdefgh",
        "zyxwvutsrq",
        "qwertyui",
        "asdfghjkl",
        "йцукенгш",
        "абвгдеёжзи",
        "1234abcd",
        "qwerty123",
        "zxcvbnm,./",
    ],
)
def test_repetitive_or_sequential_passwords_are_refused(rules, password):
    assert refused(rules, password, []) == "repetitive"


def test_near_sequences_pass(rules):
    rules.check("13579bdfh", [])
    rules.check("qwerty-is-not-my-password", [])


# --- what passes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    [
        "correct horse battery staple",
        "Сорок два попугая и один удав",
        "Ёжик в тумане 1975 года",
        "mañana-ЗАВТРА-明天",
        "tangerine lamp oxide velvet " * 4,
    ],
)
def test_long_unusual_passphrases_and_cyrillic_pass(default, password):
    default.check(password, CONTEXT)


def test_no_composition_rules(default):
    # Only lower-case letters, no digits or symbols: fine when long and not on a list.
    default.check("vermilion quokka tapestry", CONTEXT)

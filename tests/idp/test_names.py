"""Names as the registration form accepts them (issue rules; checklist item 46)."""

from __future__ import annotations

import pytest

from idp.domain.errors import ValidationError
from idp.services.users import check_name


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("Иванова", "Иванова"),
        ("  Ёлкин ", "Ёлкин"),
        ("Салтыков-Щедрин", "Салтыков-Щедрин"),
        ("О'Коннор", "О'Коннор"),
        ("Anne-Marie", "Anne-Marie"),
        ("Ян Ли", "Ян Ли"),
        ("Й", "Й"),  # composed by NFC from И + combining breve
    ],
)
def test_accepted(raw, kept):
    assert check_name(raw.replace("Й", "И\u0306"), "given_name") == kept


@pytest.mark.parametrize(
    "raw",
    [
        "Ив4н",
        "<script>",
        "Ивaн",  # a Latin "a" inside a Cyrillic word: a homoglyph
        "Иван\u200b",
        "\u202eЫ",
        "Иван\x00",
        "Петр  Петров",
        "Я" * 101,
        "Иван!",
    ],
)
def test_refused(raw):
    with pytest.raises(ValidationError):
        check_name(raw, "given_name")


def test_required_and_optional():
    with pytest.raises(ValidationError):
        check_name("   ", "family_name")
    assert check_name("", "middle_name", required=False) is None

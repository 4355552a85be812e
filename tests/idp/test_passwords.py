"""Password hashing: argon2id at the OWASP minimum, NFKC normalisation, length cap."""

from __future__ import annotations

import base64

import pytest
from argon2 import PasswordHasher as RawArgon2
from argon2 import Type

from idp.services.passwords import MAX_PASSWORD_LENGTH, PasswordHasher, prepare

PASSWORD = "верный-пароль-42"


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher()


@pytest.fixture(scope="module")
def stored(hasher) -> str:
    return hasher.hash(PASSWORD)


def _b64(part: str) -> bytes:
    return base64.b64decode(part + "=" * (-len(part) % 4))


def parse_phc(phc: str) -> dict:
    """``$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`` -> its parts."""
    empty, alg, version, params, salt, digest = phc.split("$")
    assert empty == ""
    return {
        "alg": alg,
        "version": version,
        "params": dict(kv.split("=") for kv in params.split(",")),
        "salt": _b64(salt),
        "hash": _b64(digest),
    }


def test_hash_is_argon2id_with_owasp_minimum_parameters(stored):
    phc = parse_phc(stored)
    assert phc["alg"] == "argon2id"
    assert phc["version"] == "v=19"
    assert phc["params"] == {"m": "19456", "t": "2", "p": "1"}
    assert len(phc["salt"]) == 16
    assert len(phc["hash"]) == 32


def test_hash_does_not_contain_the_password_and_is_salted(hasher, stored):
    assert PASSWORD not in stored
    again = hasher.hash(PASSWORD)
    assert again != stored
    assert parse_phc(again)["salt"] != parse_phc(stored)["salt"]


def test_verify_right_and_wrong(hasher, stored):
    assert hasher.verify(stored, PASSWORD) is True
    assert hasher.verify(stored, PASSWORD + "x") is False
    assert hasher.verify(stored, PASSWORD.upper()) is False
    assert hasher.verify(stored, "") is False


def test_verify_missing_hash_is_false(hasher):
    assert hasher.verify(None, PASSWORD) is False
    assert hasher.verify(None, "") is False


def test_verify_malformed_hash_is_false(hasher):
    assert hasher.verify("not-a-hash", PASSWORD) is False
    assert hasher.verify("$argon2id$v=19$m=19456,t=2,p=1$AAAA$BBBB", PASSWORD) is False
    assert hasher.verify("", PASSWORD) is False


def test_nfkc_fullwidth_letters_match_ascii(hasher):
    fullwidth = "Ｐａｓｓｗｏｒｄ１２３"
    assert prepare(fullwidth) == "Password123"
    assert hasher.verify(hasher.hash("Password123"), fullwidth) is True
    assert hasher.verify(hasher.hash(fullwidth), "Password123") is True


def test_nfkc_composed_and_decomposed_forms_match(hasher):
    composed = "пароль-й-ё"  # й and ё as single code points
    decomposed = "пароль-и\u0306-е\u0308"  # the same letters as base + combining mark
    assert composed != decomposed
    assert hasher.verify(hasher.hash(composed), decomposed) is True


def test_stored_hash_is_of_the_normalised_password(hasher):
    """A hash made elsewhere of the NFKC form verifies the unnormalised input, and vice versa
    the hasher stores the NFKC form (not the raw one)."""
    stored = hasher.hash("ﬁx-Ｐａｓｓ")  # ligature fi and fullwidth letters
    raw = RawArgon2(time_cost=2, memory_cost=19456, parallelism=1, type=Type.ID)
    assert raw.verify(stored, "fix-Pass")


def test_max_length_is_128(hasher):
    assert MAX_PASSWORD_LENGTH == 128
    longest = "п" * 128
    assert hasher.verify(hasher.hash(longest), longest) is True


def test_129_characters_are_refused_by_hash(hasher):
    with pytest.raises(ValueError):
        hasher.hash("a" * 129)


def test_129_characters_are_refused_by_verify(hasher):
    too_long = "a" * 129
    # Even a hash that really is of this password must not verify: refused before hashing.
    genuine = RawArgon2(time_cost=2, memory_cost=19456, parallelism=1, type=Type.ID).hash(too_long)
    assert hasher.verify(genuine, too_long) is False
    assert hasher.verify(None, too_long) is False


def test_needs_rehash(hasher, stored):
    assert hasher.needs_rehash(stored) is False
    weaker = RawArgon2(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID).hash("x")
    assert hasher.needs_rehash(weaker) is True
    assert hasher.needs_rehash("garbage") is True

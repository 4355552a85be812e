"""Legacy cabinets: hash formats against vectors made by other tools, the all-or-nothing
import on both databases, and the upgrade to argon2id (one writer among parallel calls)."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import subprocess
import threading
import time
import warnings

import bcrypt
import pytest
from sqlalchemy import func, select

from idp.adapters.sql.models import User
from idp.legacy_cli import legacy, read_file
from idp.services.legacy import (
    ImportFailed,
    LegacyImporter,
    LegacyUpgrade,
    hash_problem,
    identify,
    md5_crypt,
    verify_legacy,
)
from idp.services.password_policy import PasswordPolicy
from tests.support import make_user

# --- vectors made elsewhere ------------------------------------------------------------------

# `openssl passwd -1 -salt SALT PASSWORD` (OpenSSL 3.0.19).
OPENSSL_MD5 = [
    ("saltsalt", "password", "$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/"),
    ("Xy.z/9", "correct horse", "$1$Xy.z/9$r3SbtZzW6o/RRldlHSNmc1"),
    ("a", "x", "$1$a$TYcRT0JumNkKBBlirG1X4/"),
    ("12345678", "пароль-по-русски", "$1$12345678$Tbqj58r1pd0tRX8oetq1M/"),
    ("ab/.CD", "Tr0ub4dour&3", "$1$ab/.CD$rTqIhLT4PV9mBjVvTp2qc0"),
    (
        "zzzzzzzz",
        "a password longer than sixteen bytes, for the alternate loop",
        "$1$zzzzzzzz$ZaBjOnk7oBGh797R12wmg/",
    ),
    ("", "empty", "$1$$B5ioctsLmp9rs5O3yyJa/0"),
]
# Django 5.2.19 make_password(..., salt="seasalt42", hasher="pbkdf2_sha256").
DJANGO = (
    "lètmein-Django",
    "pbkdf2_sha256$1000000$seasalt42$piC4Z+rAXcOgx6kweicd7Jbx/Cu0GszlF002wxlSZoQ=",
)
# passlib 1.7.4 pbkdf2_sha256.using(rounds=29000, salt=b"\x01\x02saltbytes\xff\xfe").
PASSLIB = (
    "пароль для passlib",
    "$pbkdf2-sha256$29000$AQJzYWx0Ynl0ZXP//g$4bGAofZbY.yHqFLaY96lpzHQSerJwmYcd62quKahTIw",
)
# PHP's password_verify() documentation.
PHP_2Y = ("rasmuslerdorf", "$2y$10$.vGA1O9wmRjrwAVXD98HNOgsNpDczlqm3Jq7KnEd1rVAGv3Fykk1a")

OLD_PASSWORD = "старый пароль"
OLD_BCRYPT = bcrypt.hashpw(OLD_PASSWORD.encode(), bcrypt.gensalt(4)).decode()


# --- MD5-crypt -------------------------------------------------------------------------------


@pytest.mark.parametrize(("salt", "password", "expected"), OPENSSL_MD5)
def test_md5_crypt_matches_openssl_vectors(salt, password, expected):
    assert md5_crypt(password.encode(), salt.encode()) == expected
    assert identify(expected) == "md5_crypt"
    assert verify_legacy(expected, password) is True
    assert verify_legacy(expected, password + "x") is False
    assert verify_legacy(expected, password[1:]) is False


def test_md5_crypt_matches_openssl_run_now():
    openssl = shutil.which("openssl")
    assert openssl, "openssl is part of the machine image"
    alphabet = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    for length in (1, 4, 8):
        salt = "".join(secrets.choice(alphabet) for _ in range(length))
        password = "p" + secrets.token_urlsafe(12 * length)  # never starts like an option
        stored = subprocess.run(
            [openssl, "passwd", "-1", "-salt", salt, password],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert verify_legacy(stored, password) is True
        assert verify_legacy(stored, password[:-1]) is False


def test_md5_crypt_matches_the_crypt_module():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        crypt = pytest.importorskip("crypt")  # Python 3.11-3.12 only
    for length in (0, 1, 15, 16, 17, 33, 80):
        password = secrets.token_hex(64)[:length]
        salt = "./aZ09"[: length % 7]
        assert md5_crypt(password.encode(), salt.encode()) == crypt.crypt(password, f"$1${salt}$")


# --- bcrypt ----------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["$2a$", "$2b$", "$2y$"])
def test_bcrypt_prefixes(prefix):
    stored = prefix + OLD_BCRYPT[4:]
    assert identify(stored) == "bcrypt"
    assert verify_legacy(stored, OLD_PASSWORD) is True
    assert verify_legacy(stored, OLD_PASSWORD + " ") is False


def test_bcrypt_php_vector():
    password, stored = PHP_2Y
    assert verify_legacy(stored, password) is True
    assert verify_legacy(stored, "Rasmuslerdorf") is False


def test_bcrypt_counts_the_first_72_bytes_like_the_old_cabinets():
    stored = bcrypt.hashpw(b"x" * 72, bcrypt.gensalt(4)).decode()
    assert verify_legacy(stored, "x" * 72 + "ignored by bcrypt") is True
    assert verify_legacy(stored, "x" * 71) is False


def test_bcrypt_refused_variants():
    assert hash_problem("$2x$" + OLD_BCRYPT[4:]) is not None  # crypt_blowfish's buggy mode
    assert "cost" in hash_problem("$2b$15$" + OLD_BCRYPT[7:])
    assert "cost" in hash_problem("$2b$03$" + OLD_BCRYPT[7:])
    assert identify(OLD_BCRYPT[:-1]) is None


# --- PBKDF2-SHA256 ---------------------------------------------------------------------------


def test_django_vector():
    password, stored = DJANGO
    assert identify(stored) == "pbkdf2_sha256"
    assert verify_legacy(stored, password) is True
    assert verify_legacy(stored, "letmein-Django") is False


def test_passlib_vector():
    password, stored = PASSLIB
    assert identify(stored) == "pbkdf2_sha256"
    assert verify_legacy(stored, password) is True
    assert verify_legacy(stored, password + "!") is False


def test_pbkdf2_made_with_hashlib_in_both_spellings():
    password, salt, n = "Пароль из старого кабинета", b"\x00raw salt\xff", 12_000
    key = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, n)

    def ab64(data: bytes) -> str:
        return base64.b64encode(data).decode().rstrip("=").replace("+", ".")

    passlib = f"$pbkdf2-sha256${n}${ab64(salt)}${ab64(key)}"
    text_salt = "Zy9xTextSalt"
    django_key = hashlib.pbkdf2_hmac("sha256", password.encode(), text_salt.encode(), n)
    django = f"pbkdf2_sha256${n}${text_salt}${base64.b64encode(django_key).decode()}"
    for stored in (passlib, django):
        assert verify_legacy(stored, password) is True
        assert verify_legacy(stored, password.lower()) is False


def test_pbkdf2_refused_variants():
    key = base64.b64encode(b"k" * 32).decode()
    assert "iterations" in hash_problem(f"pbkdf2_sha256$999$salt${key}")
    assert "iterations" in hash_problem(f"pbkdf2_sha256$3000001$salt${key}")
    assert "bytes" in hash_problem(f"pbkdf2_sha256$10000$salt${base64.b64encode(b'k').decode()}")
    assert hash_problem("pbkdf2_sha256$10000$salt$not*base64") is not None
    assert hash_problem("pbkdf2_sha1$10000$salt$" + key) is not None


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        "$5$salt$hash",
        "$1$toolongsalt$" + "a" * 22,
        "$2b$٠٤$" + "a" * 53,
    ],
)
def test_unknown_formats_never_verify(stored):
    assert identify(stored) is None
    assert hash_problem(stored) is not None
    assert verify_legacy(stored, "anything") is False


# --- import ----------------------------------------------------------------------------------

HEADER = "login,email,phone,family_name,given_name,middle_name,region,password_hash,source"


def run_import(live, tmp_path, text: str, suffix: str = ".csv", name: str = "cabinet"):
    from idp.extensions import db

    path = tmp_path / f"{name}{suffix}"
    path.write_text(text, encoding="utf-8")
    with live.ctx():
        try:
            return LegacyImporter(db.session, clock=live.clock).import_records(read_file(path))
        finally:
            db.session.remove()


def users_where(live, *conditions) -> list[User]:
    from idp.extensions import db

    with live.ctx():
        rows = list(db.session.scalars(select(User).where(*conditions)))
        db.session.expunge_all()
        db.session.remove()
        return rows


def user_count(live) -> int:
    from idp.extensions import db

    with live.ctx():
        try:
            return db.session.scalar(select(func.count()).select_from(User))
        finally:
            db.session.remove()


def test_import_csv(live, tmp_path):
    md5 = OPENSSL_MD5[0][2]
    text = (
        "\n".join(
            [
                HEADER,
                f"8 (912) 000-00-01,,,Иванова,Мария,Петровна,Пермский край,{OLD_BCRYPT},perm-lk",
                f",Sidorov@Example.RU,+7 912 000 00 02,Сидоров,Олег,,,{md5},perm-lk",
                f"o.kim@example.ru,,,Ким,Ольга,,Москва,{DJANGO[1]},moscow-lk",
            ]
        )
        + "\n"
    )
    report = run_import(live, tmp_path, text)
    assert report.as_dict() == {
        "imported": 3,
        "sources": {"perm-lk": 2, "moscow-lk": 1},
        "schemes": {"bcrypt": 1, "md5_crypt": 1, "pbkdf2_sha256": 1},
    }
    [maria] = users_where(live, User.phone == "+79120000001")
    assert (maria.family_name, maria.given_name, maria.middle_name) == (
        "Иванова",
        "Мария",
        "Петровна",
    )
    assert maria.status == "legacy" and maria.legacy_source == "perm-lk"
    assert maria.phone_verified is True and maria.email is None
    assert maria.password_hash == OLD_BCRYPT  # stored as it came
    assert maria.region == "Пермский край"
    [oleg] = users_where(live, User.email == "sidorov@example.ru")
    assert oleg.phone == "+79120000002" and oleg.email_verified and oleg.phone_verified
    assert oleg.password_hash == md5
    with live.ctx():
        # Not an account one can sign in to until upgraded.
        assert live.services.users.find_by_login("+79120000001") is None


def test_import_jsonl(live, tmp_path):
    rows = [
        {
            "phone": "+79120000011",
            "family_name": "Орлов",
            "given_name": "Пётр",
            "middle_name": None,
            "region": "Томская область",
            "password_hash": PASSLIB[1],
            "source": "tomsk",
        },
        {
            "login": "orlova@example.ru",
            "family_name": "Орлова",
            "given_name": "Анна",
            "password_hash": PHP_2Y[1],
            "source": "tomsk",
        },
    ]
    text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n\n"
    report = run_import(live, tmp_path, text, ".jsonl")
    assert report.imported == 2
    assert {u.given_name for u in users_where(live, User.legacy_source == "tomsk")} == {
        "Пётр",
        "Анна",
    }


def test_every_bad_row_is_reported_with_its_line_and_nothing_is_imported(live, tmp_path):
    good = f"+79120000021,,,Петров,Иван,,,{OLD_BCRYPT},lk"
    text = (
        "\n".join(
            [
                HEADER,  # 1
                good,  # 2
                f"+79120000022,,,,Иван,,,{OLD_BCRYPT},lk",  # 3: no family name
                f"not-a-login,,,Петров,Иван,,,{OLD_BCRYPT},lk",  # 4
                "+79120000023,,,Петров,Иван,,,plain-text-password,lk",  # 5
                f",,,Петров,Иван,,,{OLD_BCRYPT},lk",  # 6: no contact
                f"+79120000021,,,Петров,Иван,,,{OLD_BCRYPT},lk",  # 7: same phone as line 2
                f"+79120000024,,,Петров,Иван,,,{OLD_BCRYPT},",  # 8: no source
                "+79120000025,,,Петров,Иван",  # 9: too few fields
                f"+79120000026,bad@,,Петров,Иван\u200b,,,{OLD_BCRYPT},lk",  # 10: two problems
                f"ivan@example.ru,,+79120000027,Петров,Иван,,,{OLD_BCRYPT},lk",  # 11: fine
                f"ivan@example.ru,other@example.ru,,Петров,Иван,,,{OLD_BCRYPT},lk",  # 12
                f"+79120000028,,,Петров,Иван,,Пермская обл.,{OLD_BCRYPT},lk",  # 13
            ]
        )
        + "\n"
    )
    before = user_count(live)
    with pytest.raises(ImportFailed) as caught:
        run_import(live, tmp_path, text)
    errors = caught.value.errors
    assert [e.split(":")[0] for e in errors] == [
        f"line {n}" for n in (3, 4, 5, 6, 7, 8, 9, 10, 12, 13)
    ]
    by_line = {e.split(":")[0]: e for e in errors}
    assert "family_name is required" in by_line["line 3"]
    assert "'not-a-login' is not a mobile number or e-mail" in by_line["line 4"]
    assert "password_hash: not a recognised hash" in by_line["line 5"]
    assert "plain-text-password" not in by_line["line 5"]  # secrets are not echoed
    assert "a login, email or phone is required" in by_line["line 6"]
    assert "phone +79120000021 already given on line 2" in by_line["line 7"]
    assert "source is required" in by_line["line 8"]
    assert "expected 9 fields, found 5" in by_line["line 9"]
    assert "email: 'bad@' is not an e-mail address" in by_line["line 10"]
    assert "given_name may hold only letters, hyphens and apostrophes" in by_line["line 10"]
    assert "email: differs from the login" in by_line["line 12"]
    assert "region: 'Пермская обл.' is not a federal subject of Russia" in by_line["line 13"]
    assert user_count(live) == before


def test_jsonl_errors_carry_file_lines(live, tmp_path):
    text = "\n".join(
        [
            json.dumps(
                {
                    "phone": "+79120000031",
                    "family_name": "А",
                    "given_name": "Б",
                    "password_hash": OLD_BCRYPT,
                    "source": "x",
                }
            ),
            "",
            "{not json",
            "[1, 2]",
            json.dumps(
                {
                    "phone": 79120000032,
                    "family_name": "А",
                    "given_name": "Б",
                    "password_hash": OLD_BCRYPT,
                    "source": "x",
                    "extra": 1,
                }
            ),
        ]
    )
    with pytest.raises(ImportFailed) as caught:
        run_import(live, tmp_path, text, ".jsonl")
    assert caught.value.errors == [
        "line 3: not valid JSON",
        "line 4: not a JSON object",
        "line 5: extra: unknown field; phone: must be a string; "
        "a login, email or phone is required",
    ]
    assert users_where(live, User.phone == "+79120000031") == []


def test_bad_header_and_file_problems(live, tmp_path):
    with pytest.raises(ImportFailed) as caught:
        run_import(live, tmp_path, "family_name,given_name,password,source\n")
    assert caught.value.errors == [
        "line 1: unknown column 'password'; missing column 'password_hash'; "
        "a login, email or phone column is required"
    ]
    with pytest.raises(ImportFailed) as caught:
        run_import(live, tmp_path, HEADER + "\n")
    assert caught.value.errors == ["the file holds no records"]
    with pytest.raises(ImportFailed):
        run_import(live, tmp_path, "{}", ".txt")
    path = tmp_path / "latin1.csv"
    path.write_bytes(HEADER.encode() + "\nФамилия".encode("cp1251"))
    with pytest.raises(ImportFailed) as caught:
        read_file(path)
    assert caught.value.errors == ["line 2: not UTF-8 text"]


def test_contact_of_an_existing_account_is_a_row_error(live, tmp_path):
    _, phone = make_user(live, login="+79120000041")
    make_user(live, login="taken@example.ru")
    run_import(live, tmp_path, f"{HEADER}\n+79120000042,,,А,Б,,,{OLD_BCRYPT},lk\n", name="first")
    before = user_count(live)
    text = "\n".join(
        [
            HEADER,
            f"8 912 000 00 41,,,Петров,Иван,,,{OLD_BCRYPT},lk",
            f"TAKEN@example.ru,,,Петров,Иван,,,{OLD_BCRYPT},lk",
            f"+79120000042,,,А,Б,,,{OLD_BCRYPT},lk",
            f"+79120000043,,,А,Б,,,{OLD_BCRYPT},lk",
        ]
    )
    with pytest.raises(ImportFailed) as caught:
        run_import(live, tmp_path, text, name="second")
    assert caught.value.errors == [
        f"line 2: phone {phone} belongs to an active account",
        "line 3: email taken@example.ru belongs to an active account",
        "line 4: phone +79120000042 belongs to an imported account",
    ]
    assert user_count(live) == before


def test_cli_group_is_importable():
    assert "import" in legacy.commands


# --- upgrade ---------------------------------------------------------------------------------


def legacy_user(live, tmp_path, stored: str = OLD_BCRYPT, phone: str = "+79120000051") -> str:
    run_import(live, tmp_path, f"{HEADER}\n{phone},,,Петров,Иван,,,{stored},lk\n", name=phone[1:])
    [user] = users_where(live, User.phone == phone)
    return user.id


def upgrade(live, user_id: str | None, password: str, upgrader: LegacyUpgrade | None = None):
    from idp.extensions import db

    with live.ctx():
        upgrader = upgrader or LegacyUpgrade(db.session, live.services.hasher, clock=live.clock)
        try:
            user = db.session.get(User, user_id) if user_id else None
            return upgrader.upgrade(user, password)
        finally:
            db.session.remove()


@pytest.mark.parametrize(
    "stored",
    [OLD_BCRYPT, md5_crypt(OLD_PASSWORD.encode(), b"q1w2e3r4")],
    ids=["bcrypt", "md5_crypt"],
)
def test_upgrade_rehashes_to_argon2id_and_activates(live, tmp_path, stored):
    user_id = legacy_user(live, tmp_path, stored)
    outcome = upgrade(live, user_id, OLD_PASSWORD)
    assert outcome and outcome.ok and outcome.performed and outcome.weak is None
    [user] = users_where(live, User.id == user_id)
    assert user.status == "active"
    assert user.password_hash.startswith("$argon2id$")
    assert user.legacy_source == "lk"  # where the account came from stays on record
    assert user.password_changed_at > 0
    with live.ctx():
        assert live.services.hasher.verify(user.password_hash, OLD_PASSWORD)
        assert live.services.users.find_by_login("+79120000051").id == user_id
    assert not upgrade(live, user_id, OLD_PASSWORD)  # no longer legacy


def test_wrong_password_leaves_the_account_legacy(live, tmp_path):
    user_id = legacy_user(live, tmp_path)
    outcome = upgrade(live, user_id, "не тот пароль")
    assert not outcome and outcome.performed is False
    [user] = users_where(live, User.id == user_id)
    assert user.status == "legacy" and user.password_hash == OLD_BCRYPT


def test_active_or_missing_accounts_are_refused_at_the_cost_of_a_check(live):
    user_id, _ = make_user(live)
    started = time.perf_counter()
    assert not upgrade(live, None, OLD_PASSWORD)
    missing = time.perf_counter() - started
    assert not upgrade(live, user_id, "верный-пароль-42")
    check_started = time.perf_counter()
    bcrypt.checkpw(b"x", bcrypt.hashpw(b"y", bcrypt.gensalt(10)))
    one_check = (time.perf_counter() - check_started) / 2  # hashpw + checkpw
    assert missing >= 0.5 * one_check  # a dummy bcrypt (cost 10) was verified


def test_weak_legacy_password_is_upgraded_and_flagged(live, tmp_path):
    stored = bcrypt.hashpw(b"password1", bcrypt.gensalt(4)).decode()
    user_id = legacy_user(live, tmp_path, stored)
    from idp.extensions import db

    with live.ctx():
        upgrader = LegacyUpgrade(db.session, live.services.hasher, PasswordPolicy.load_default())
    outcome = upgrade(live, user_id, "password1", upgrader)
    assert outcome.ok and outcome.performed and outcome.weak == "common"


def test_parallel_upgrades_write_once(live, tmp_path):
    user_id = legacy_user(live, tmp_path)
    from idp.extensions import db

    with live.ctx():
        upgrader = LegacyUpgrade(db.session, live.services.hasher, clock=live.clock)
    barrier = threading.Barrier(16)
    outcomes, errors = [], []

    def attempt() -> None:
        try:
            with live.ctx():
                user = db.session.get(User, user_id)
                # Give the connection back: the pool holds 15, and 16 callers wait here.
                db.session.commit()
                barrier.wait(10)
                outcomes.append(upgrader.upgrade(user, OLD_PASSWORD))
                db.session.remove()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert len(outcomes) == 16
    # One caller writes. Callers that read the row before that write learn that the account
    # is active now (ok); later ones find it no longer legacy and are refused.
    assert sum(o.performed for o in outcomes) == 1
    assert all(o.ok for o in outcomes if o.performed)
    [user] = users_where(live, User.id == user_id)
    assert user.status == "active" and user.password_hash.startswith("$argon2id$")

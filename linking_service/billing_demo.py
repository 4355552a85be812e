"""Demo billing accounts for `make run` and the README: deterministic, loaded by upsert.

The first account belongs to the IdP's demo user (Иванова Мария Петровна, +79990000001,
«Пермский край»), so automatic attachment at registration finds it. The others cover Home
Internet only, Home Phone only, both services, an account without a middle name, a relative's
account in the same region, and a closed account.
"""

from __future__ import annotations

import phonenumbers
from argon2 import PasswordHasher
from sqlalchemy.orm import Session, sessionmaker

from linking_service.billing_import import import_records

# Credentials here are demo data printed in the README, not secrets.
DEMO_ACCOUNTS: tuple[dict, ...] = (
    {
        "number": "159000000001",
        "region": "Пермский край",
        "family_name": "Иванова",
        "given_name": "Мария",
        "middle_name": "Петровна",
        "phones": ["+79990000001"],
        "emails": ["demo@example.ru"],
        "status": "active",
        "services": [
            {"type": "internet", "login": "ivanova.perm", "password": "Kv7pT2mq"},
            {"type": "phone", "number": "+73422123456", "pin": "4821"},
        ],
    },
    {
        "number": "159000000002",
        "region": "Пермский край",
        "family_name": "Иванов",
        "given_name": "Пётр",
        "middle_name": "Сергеевич",
        "phones": ["+79027778899"],
        "emails": [],
        "status": "active",
        "services": [{"type": "internet", "login": "ivanov.ps", "password": "Rb4xN8wd"}],
    },
    {
        "number": "177000000003",
        "region": "Москва",
        "family_name": "Смирнов",
        "given_name": "Алексей",
        "middle_name": "Викторович",
        "phones": ["+79161234567"],
        "emails": ["a.smirnov@example.ru"],
        "status": "active",
        "services": [{"type": "phone", "number": "+74957654321", "pin": "3907"}],
    },
    {
        "number": "177000000004",
        "region": "Москва",
        "family_name": "Кузнецова",
        "given_name": "Ольга",
        "middle_name": "Николаевна",
        "phones": [],
        "emails": ["o.kuznetsova@example.ru"],
        "status": "active",
        "services": [{"type": "internet", "login": "kuznetsova.on", "password": "Hq9sL3vz"}],
    },
    {
        "number": "178000000005",
        "region": "Санкт-Петербург",
        "family_name": "Соколов",
        "given_name": "Дмитрий",
        "middle_name": "Андреевич",
        "phones": ["+79217654321"],
        "emails": [],
        "status": "active",
        "services": [
            {"type": "internet", "login": "sokolov.spb", "password": "Mw6cY4kr"},
            {"type": "phone", "number": "+78123214567", "pin": "6150"},
        ],
    },
    {
        "number": "178000000006",
        "region": "Санкт-Петербург",
        "family_name": "Попова",
        "given_name": "Анна",
        "middle_name": "Игоревна",
        "phones": ["+79033334455"],
        "emails": ["popova.anna@example.ru"],
        "status": "closed",
        "services": [{"type": "internet", "login": "popova.ai", "password": "Zt5gP7hn"}],
    },
    {
        "number": "116000000007",
        "region": "Республика Татарстан",
        "family_name": "Хабибуллин",
        "given_name": "Рустам",
        "middle_name": "Ильдарович",
        "phones": ["+79172345678"],
        "emails": [],
        "status": "active",
        "services": [{"type": "internet", "login": "khabibullin.r", "password": "Dx3jF9qa"}],
    },
    {
        "number": "116000000008",
        "region": "Республика Татарстан",
        "family_name": "Ахметова",
        "given_name": "Лейсан",
        "middle_name": None,
        "phones": [],
        "emails": ["leysan.akhmetova@example.ru"],
        "status": "active",
        "services": [{"type": "phone", "number": "+78432905511", "pin": "7264"}],
    },
)

_LABELS = {"internet": "Домашний Интернет", "phone": "Домашний телефон"}


def load_demo(sessions: sessionmaker[Session], hasher: PasswordHasher | None = None) -> int:
    """Upsert the demo accounts (safe to run again); the number of accounts written."""
    report = import_records(enumerate(DEMO_ACCOUNTS, start=1), sessions, hasher)
    return report.accounts


def _pretty(e164: str) -> str:
    number = phonenumbers.parse(e164)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _services(account: dict) -> str:
    parts = []
    for service in account["services"]:
        if service["type"] == "internet":
            proof = f"login `{service['login']}`, password `{service['password']}`"
        else:
            proof = f"number {_pretty(service['number'])}, PIN `{service['pin']}`"
        parts.append(f"{_LABELS[service['type']]}: {proof}")
    return "<br>".join(parts) or "—"


def demo_table() -> str:
    """The demo accounts as a Markdown table for the README."""
    lines = [
        "| Account (ЛС) | Region | Owner | Contacts | Status | Services and credentials |",
        "|---|---|---|---|---|---|",
    ]
    for account in DEMO_ACCOUNTS:
        owner = " ".join(
            part
            for part in (account["family_name"], account["given_name"], account["middle_name"])
            if part
        )
        contacts = ", ".join([_pretty(p) for p in account["phones"]] + account["emails"]) or "—"
        lines.append(
            f"| {account['number']} | {account['region']} | {owner} | {contacts} "
            f"| {account['status']} | {_services(account)} |"
        )
    return "\n".join(lines) + "\n"

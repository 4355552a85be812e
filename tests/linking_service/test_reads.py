"""The hot reads (issue 10): ``ListAccounts`` / ``ListIdentityAccounts`` read the links in one
Core statement and the directory's accounts with their services in one more, whatever their
number; pooled connections are pinged only after sitting idle. On SQLite and PostgreSQL.
Statements are counted on the engine (no timing is asserted)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from linking_service.adapters.billing_sql import SqlBillingDirectory
from linking_service.adapters.sql.db import make_engine, make_sessions, transaction
from linking_service.adapters.sql.models import BillingAccountRow, BillingServiceRow, LinkRow
from linking_service.adapters.sql.pool import ping_when_idle
from linking_service.config import load_settings
from linking_service.domain import ServiceType
from linking_service.service import LinkingService
from tests.linking_service.conftest import CHEAP, SECRET_KEY, _reset

OWNER = "subject-1"


@pytest.fixture
def engine(profile, linking_databases):
    url = linking_databases[profile]
    _reset(url)
    engine = make_engine(url)
    yield engine
    engine.dispose()


def _seed(sessions) -> None:
    """Three accounts held by OWNER (one with two services, one with none, one the directory
    no longer knows) and one held by somebody else."""
    with transaction(sessions) as db:
        for number in ("159000000001", "159000000002", "159000000009"):
            db.add(
                BillingAccountRow(
                    number=number,
                    region="Пермский край",
                    family_name="Петров",
                    given_name="Иван",
                    middle_name=None,
                    phones=["+79123456789"],
                    emails=[],
                    status="active",
                )
            )
        db.flush()
        db.add_all(
            [
                BillingServiceRow(
                    account_number="159000000001",
                    kind="phone",
                    phone="+73422000001",
                    secret_hash="x",
                ),
                BillingServiceRow(
                    account_number="159000000001", kind="internet", login="petrov", secret_hash="x"
                ),
                LinkRow(account_number="159000000001", subject=OWNER, version=1, attached_at=10),
                LinkRow(account_number="159000000002", subject=OWNER, version=1, attached_at=20),
                LinkRow(account_number="159000000003", subject=OWNER, version=1, attached_at=30),
                LinkRow(account_number="159000000009", subject="other", version=1, attached_at=40),
            ]
        )


class Statements:
    def __init__(self, engine) -> None:
        self.seen: list[str] = []
        sa.event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if not statement.startswith("BEGIN"):  # SQLite's read-only BEGIN DEFERRED
            self.seen.append(statement)


def test_accounts_of_reads_links_and_accounts_in_two_statements(engine, tmp_path):
    sessions = make_sessions(engine)
    _seed(sessions)
    settings = load_settings(
        {
            "LINKING_DATABASE_URL": str(engine.url.render_as_string(hide_password=False)),
            "LINKING_SECRET_KEY": SECRET_KEY,
            "LINKING_VAR_DIR": str(tmp_path),
        }
    )
    service = LinkingService(sessions, SqlBillingDirectory(sessions, CHEAP), settings)
    statements = Statements(engine)
    accounts = service.accounts_of(OWNER)
    assert len(statements.seen) == 2, statements.seen  # was one per link and two per account
    assert [(a.number, a.region, a.attached_at, a.services) for a in accounts] == [
        ("159000000001", "Пермский край", 10, (ServiceType.HOME_INTERNET, ServiceType.HOME_PHONE)),
        ("159000000002", "Пермский край", 20, ()),
        ("159000000003", "", 30, ()),  # not (or no longer) in the directory
    ]
    statements.seen.clear()
    assert service.accounts_of("nobody") == []
    assert len(statements.seen) == 1
    assert service.owner_of("159000000009") == ("other", 40)
    assert service.owner_of("159000000008") == (None, None)


def test_find_accounts_is_one_statement_and_agrees_with_find_account(engine):
    sessions = make_sessions(engine)
    _seed(sessions)
    directory = SqlBillingDirectory(sessions, CHEAP)
    statements = Statements(engine)
    found = directory.find_accounts(["159000000002", "159000000001", "159000000003", 7])
    assert len(statements.seen) == 1
    assert sorted(found) == ["159000000001", "159000000002"]
    first = found["159000000001"]
    assert [(s.kind, s.login, s.phone) for s in first.services] == [
        (ServiceType.HOME_INTERNET, "petrov", None),
        (ServiceType.HOME_PHONE, None, "+73422000001"),
    ]
    assert first.phones == ("+79123456789",) and first.middle_name is None
    for number, account in found.items():
        assert directory.find_account(number) == account
    assert directory.find_accounts([]) == {}
    assert directory.find_account("159000000003") is None


# --- the pool: pinged only after sitting idle --------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _pinged(url: str, clock: Clock) -> sa.Engine:
    engine = sa.create_engine(url, pool_size=1, max_overflow=0)
    ping_when_idle(engine, idle=5.0, clock=clock)
    return engine


def _lose_the_connection(engine: sa.Engine, url: str) -> None:
    with engine.connect() as conn:
        pid = conn.execute(sa.text("select pg_backend_pid()")).scalar()
    killer = sa.create_engine(url)
    with killer.begin() as conn:
        conn.execute(sa.text("select pg_terminate_backend(:pid)"), {"pid": pid})
    killer.dispose()


def test_an_idle_connection_that_died_is_replaced_before_use(linking_databases):
    url, clock = linking_databases["pg-redis"], Clock()
    engine = _pinged(url, clock)
    _lose_the_connection(engine, url)
    clock.now += 5.0
    with engine.connect() as conn:
        assert conn.execute(sa.text("select 1")).scalar() == 1
    engine.dispose()


def test_a_connection_used_moments_ago_is_not_pinged(linking_databases):
    """The trade for one round trip less per RPC: a connection lost within the idle window
    fails its next statement once; the pool is renewed after that."""
    url, clock = linking_databases["pg-redis"], Clock()
    engine = _pinged(url, clock)
    _lose_the_connection(engine, url)
    clock.now += 1.0
    with pytest.raises(sa.exc.DBAPIError), engine.connect() as conn:
        conn.execute(sa.text("select 1"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("select 1")).scalar() == 1
    engine.dispose()

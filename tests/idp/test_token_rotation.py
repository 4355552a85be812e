"""TokenService's refresh rotation on its persistence ports, without a server: the same tests
on the in-memory twin and on the SQL adapter (SQLite and PostgreSQL).

RFC 9700 §4.14.2: a rotated refresh token presented again revokes its family; and because
rotation and issue are one unit of work, a failure between them leaves the old token as it
was, so the client's retry succeeds and is not taken for reuse.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import sqlalchemy as sa
from joserfc import jwt
from joserfc.jwk import ECKey
from sqlalchemy.orm import sessionmaker

from idp.adapters.persistence_memory import MemoryTokenStore, MemoryUnitOfWork
from idp.adapters.sql.models import Client, Grant, User
from idp.adapters.sql.tokens import SqlTokenStore
from idp.adapters.sql.uow import SqlUnitOfWork
from idp.services.tokens import Authentication, TokenPolicy, TokenService
from tests.conftest import _reset

POLICY = TokenPolicy("https://idp.test", 60, 300, 300, 3600)
AUDIENCE = ["https://idp.test"]
KEY = ECKey.generate_key("P-256", parameters={"kid": "test"})


class SigningKeys:
    """A twin of KeyService's signing side; ``failing`` makes the next signature raise (a
    crash between the rotation and the issue of its successor)."""

    def __init__(self) -> None:
        self.failing = False

    def sign(self, claims: dict, alg: str, typ: str = "JWT") -> str:
        if self.failing:
            self.failing = False
            raise RuntimeError("signing key service down")
        return jwt.encode({"alg": "ES256", "kid": "test", "typ": typ}, claims, KEY)


class Backend:
    """Builds TokenServices sharing one store: one per thread, as requests would."""

    def __init__(self, kind: str, url: str | None) -> None:
        self.kind = kind
        self.keys = SigningKeys()
        now = int(time.time())
        self.client = Client(
            client_id=f"c-{uuid.uuid4().hex[:8]}",
            name="Портал",
            public=False,
            first_party=True,
            redirect_uris=["https://rp.example/cb"],
            post_logout_redirect_uris=[],
            grant_types=["authorization_code", "refresh_token"],
            scopes=["openid", "offline_access", "profile"],
            token_endpoint_auth_method="client_secret_basic",
            id_token_signed_response_alg="ES256",
            created_at=now,
        )
        self.user = User(
            id=str(uuid.uuid4()),
            family_name="Петров",
            given_name="Иван",
            phone=f"+7999{uuid.uuid4().int % 10**7:07d}",
            phone_verified=True,
            email_verified=False,
            locale="ru",
            status="active",
            created_at=now,
            updated_at=now,
            password_changed_at=now,
        )
        if kind == "memory":
            self.users = {self.user.id: self.user}
            self.store = MemoryTokenStore(users=self.users.get)
            self.uow = MemoryUnitOfWork(self.store)
            return
        _reset(url)
        self.opened: list = []
        self.engine = sa.create_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        with self.sessions.begin() as session:
            session.add_all([self.client, self.user])
        self.users = None

    def service(self) -> tuple[TokenService, object]:
        if self.kind == "memory":
            return TokenService(self.store, self.uow, self.keys, POLICY), self.users.get
        session = self.sessions()
        self.opened.append(session)  # closed at the end: an open read would block _reset
        tokens = TokenService(SqlTokenStore(session), SqlUnitOfWork(session), self.keys, POLICY)
        return tokens, lambda user_id: session.get(User, user_id)

    def ports(self) -> tuple[object, object]:
        """A token store and its unit of work, as a TokenService of this backend has them."""
        if self.kind == "memory":
            return self.store, self.uow
        session = self.sessions()
        self.opened.append(session)
        return SqlTokenStore(session), SqlUnitOfWork(session)

    def grants(self) -> list[Grant]:
        if self.kind == "memory":
            return list(self.store.snapshot()[1].values())
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(sa.select(Grant.__table__))]

    def close(self) -> None:
        if self.kind != "memory":
            for session in self.opened:
                session.close()
            self.engine.dispose()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def backend(request, databases):
    url = None
    if request.param != "memory":
        url = databases["embedded" if request.param == "sqlite" else "pg-redis"]
    made = Backend(request.param, url)
    yield made
    made.close()


def first_tokens(backend) -> str:
    tokens, _ = backend.service()
    issued = tokens.issue(
        backend.client,
        backend.user,
        "openid offline_access",
        AUDIENCE,
        authn=Authentication(int(time.time()), None, ("pwd",), None),
        include_refresh=True,
    )
    return issued.response["refresh_token"]


def refresh(backend, token: str, requested=()):
    tokens, load_user = backend.service()
    return tokens.refresh(token, backend.client, list(requested), AUDIENCE, load_user)


def test_rotation_issues_a_successor_and_reuse_revokes_the_family(backend):
    old = first_tokens(backend)
    outcome = refresh(backend, old)
    assert outcome.refused is None
    new = outcome.issued.response["refresh_token"]
    assert new != old
    assert refresh(backend, old).refused == "invalid"  # reuse
    assert refresh(backend, new).refused == "invalid"  # the family went with it
    assert all(g["revoked_at"] is not None for g in backend.grants())


def test_a_crash_between_rotation_and_issue_leaves_the_old_token_usable(backend):
    old = first_tokens(backend)
    backend.keys.failing = True
    with pytest.raises(RuntimeError, match="signing key service down"):
        refresh(backend, old)
    grants = backend.grants()
    assert len(grants) == 1 and grants[0]["rotated_at"] is None, grants
    retry = refresh(backend, old)
    assert retry.refused is None, "the retry was taken for reuse"
    # The successor works: nothing was revoked.
    assert refresh(backend, retry.issued.response["refresh_token"]).refused is None
    assert [g["revoked_at"] for g in backend.grants()] == [None, None, None]


def test_a_wider_scope_is_refused_without_spending_the_token(backend):
    old = first_tokens(backend)
    assert refresh(backend, old, ["openid", "profile"]).refused == "scope"
    narrowed = refresh(backend, old, ["openid"])
    assert narrowed.refused is None
    assert narrowed.issued.grant.scope == "openid"


def test_an_inactive_account_ends_the_family_and_the_revocation_is_kept(backend):
    old = first_tokens(backend)
    if backend.kind == "memory":
        backend.user.status = "legacy"
    else:
        with backend.sessions.begin() as session:
            session.get(User, backend.user.id).status = "legacy"
    assert refresh(backend, old).refused == "inactive"
    assert all(g["revoked_at"] is not None for g in backend.grants())


def test_parallel_refreshes_of_one_token_succeed_exactly_once(backend):
    old = first_tokens(backend)
    outcomes, barrier = [], threading.Barrier(8)

    def attempt():
        barrier.wait()
        outcomes.append(refresh(backend, old))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(outcomes) == 8
    assert sum(o.refused is None for o in outcomes) == 1, [o.refused for o in outcomes]
    # The losers presented a rotated token: reuse, so the whole family is revoked.
    assert all(g["revoked_at"] is not None for g in backend.grants())


def test_a_refresh_token_presented_by_another_client_is_refused_and_left_as_it_is(backend):
    """The claim names the client: another client's presentation spends nothing and is not
    taken for reuse, so the rightful client's next refresh still succeeds."""
    old = first_tokens(backend)
    tokens, load_user = backend.service()
    other = Client(client_id="someone-else")
    assert tokens.refresh(old, other, [], AUDIENCE, load_user).refused == "invalid"
    assert refresh(backend, old).refused is None
    assert all(g["revoked_at"] is None for g in backend.grants())


# --- authorization codes: one conditional UPDATE … RETURNING, a lookup only when it fails ----


def saved_code(backend) -> str:
    tokens, _ = backend.service()
    return tokens.save_code(
        backend.client.client_id,
        backend.user.id,
        "https://rp.example/cb",
        "openid offline_access",
        "n-1",
        "c" * 43,
        "S256",
        Authentication(int(time.time()), None, ("pwd",), None),
    )


def test_a_code_is_redeemed_once_and_its_replay_revokes_what_it_issued(backend):
    code = saved_code(backend)
    tokens, _ = backend.service()
    row = tokens.consume_code(code, backend.client.client_id)
    assert row is not None and row.nonce == "n-1" and row.consumed_at is not None
    tokens.issue(
        backend.client,
        backend.user,
        row.scope,
        AUDIENCE,
        authn=Authentication(row.auth_time, row.acr, tuple(row.amr), row.sid),
        include_refresh=True,
        code_id=row.id,
    )
    assert [g["revoked_at"] for g in backend.grants()] == [None]
    tokens, _ = backend.service()
    assert tokens.consume_code(code, backend.client.client_id) is None  # replay
    assert all(g["revoked_at"] is not None for g in backend.grants())


def test_a_code_presented_by_another_client_is_refused_and_left_unspent(backend):
    code = saved_code(backend)
    tokens, _ = backend.service()
    assert tokens.consume_code(code, "someone-else") is None
    assert tokens.consume_code("unknown-" + code, backend.client.client_id) is None
    tokens, _ = backend.service()
    assert tokens.consume_code(code, backend.client.client_id) is not None


def test_the_access_read_and_the_deny_list(backend):
    """The store's side of userinfo and introspection: a person's unrevoked grant with its
    account in one read; the deny list of client_credentials tokens, a second entry no error."""
    tokens, _ = backend.service()
    issued = tokens.issue(backend.client, backend.user, "openid profile", AUDIENCE)
    store, uow = backend.ports()
    found = store.access_by_jti(issued.grant.access_jti)
    assert (found.grant_id, found.user_id, found.client_id) == (
        issued.grant.id,
        backend.user.id,
        backend.client.client_id,
    )
    assert found.audience == tuple(AUDIENCE) and not found.has_refresh and not found.stateless
    assert found.holder.given_name == "Иван" and found.holder.usable
    assert store.access_by_jti("no-such-jti") is None
    tokens.revoke_access(issued.grant.id)
    assert store.access_by_jti(issued.grant.access_jti) is None
    with uow.transaction():
        store.deny("svc.revoked", int(time.time()) + 60)
    with uow.transaction():
        store.deny("svc.revoked", int(time.time()) + 60)
    assert store.denied("svc.revoked") and not store.denied("svc.other")

"""SessionService on its persistence port, without a server: the same tests on the in-memory
twin and on the SQL adapter (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import sessionmaker

from idp.adapters.persistence_memory import MemorySessionStore, MemoryUnitOfWork
from idp.adapters.sql.models import Client, User
from idp.adapters.sql.sessions import SqlSessionStore
from idp.adapters.sql.uow import SqlUnitOfWork
from idp.services.sessions import SessionService
from tests.conftest import _reset
from tests.support import Clock

TTL, REMEMBER_TTL = 12 * 3600, 30 * 86400


def _user() -> User:
    now = int(time.time())
    return User(
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


def _client(name: str) -> Client:
    return Client(
        client_id=f"{name}-{uuid.uuid4().hex[:6]}",
        name=name,
        public=False,
        first_party=True,
        redirect_uris=["https://rp.example/cb"],
        post_logout_redirect_uris=[],
        grant_types=["authorization_code"],
        scopes=["openid"],
        token_endpoint_auth_method="client_secret_basic",
        id_token_signed_response_alg="ES256",
        created_at=int(time.time()),
    )


class Backend:
    def __init__(self, kind: str, url: str | None) -> None:
        self.kind, self.clock = kind, Clock()
        self.user, self.clients = _user(), [_client("portal"), _client("shop")]
        if kind == "memory":
            by_id = {c.client_id: c for c in self.clients}
            self.store = MemorySessionStore(by_id.get)
            self.uow = MemoryUnitOfWork(self.store)
            return
        _reset(url)
        self.opened: list = []
        self.engine = sa.create_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        with self.sessions.begin() as db:
            db.add_all([self.user, *self.clients])

    def service(self) -> SessionService:
        if self.kind == "memory":
            store, uow, users = self.store, self.uow, {self.user.id: self.user}.get
        else:
            db = self.sessions()
            self.opened.append(db)  # closed at the end: an open read would block _reset
            store, uow = SqlSessionStore(db), SqlUnitOfWork(db)
            users = lambda user_id: db.get(User, user_id)  # noqa: E731
        return SessionService(store, uow, users, TTL, REMEMBER_TTL, self.clock)

    def close(self) -> None:
        if self.kind != "memory":
            for db in self.opened:
                db.close()
            self.engine.dispose()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def backend(request, databases):
    url = None
    if request.param != "memory":
        url = databases["embedded" if request.param == "sqlite" else "pg-redis"]
    made = Backend(request.param, url)
    yield made
    made.close()


def test_a_cookie_finds_its_session_until_it_ends(backend):
    sessions = backend.service()
    opened = sessions.open(backend.user, ["pwd"], None, False, "198.51.100.7", "UA")
    assert opened.max_age is None  # a browser-session cookie
    assert backend.service().current(opened.cookie_value).id == opened.session.id
    assert backend.service().current(opened.cookie_value + "x") is None
    assert backend.service().end(opened.session) is True
    assert backend.service().end(opened.session) is False  # already ended
    assert backend.service().current(opened.cookie_value) is None


def test_remember_me_lasts_thirty_days_and_expiry_ends_it(backend):
    opened = backend.service().open(backend.user, ["pwd"], None, True, None, None)
    assert opened.max_age == REMEMBER_TTL
    backend.clock.advance(REMEMBER_TTL + 1)
    assert backend.service().current(opened.cookie_value) is None
    assert backend.service().list_for(backend.user.id) == []


def test_a_new_sign_in_ends_the_browsers_previous_session(backend):
    first = backend.service().open(backend.user, ["pwd"], None, False, None, None)
    second = backend.service().open(
        backend.user, ["pwd"], None, False, None, None, previous_cookie=first.cookie_value
    )
    assert backend.service().current(first.cookie_value) is None
    live = [s.id for s in backend.service().list_for(backend.user.id)]
    assert live == [second.session.id]


def test_end_all_keeps_only_the_given_session(backend):
    opened = [backend.service().open(backend.user, ["pwd"], None, False, None, None)]
    for _ in range(2):
        backend.clock.advance(1)
        opened.append(backend.service().open(backend.user, ["pwd"], None, False, None, None))
    keep = opened[1].session.id
    assert backend.service().end_all(backend.user.id, keep=keep) == 2
    assert [s.id for s in backend.service().list_for(backend.user.id)] == [keep]


def test_clients_are_remembered_once_even_in_parallel(backend):
    sid = backend.service().open(backend.user, ["pwd"], None, False, None, None).session.id
    barrier = threading.Barrier(6)

    def note(client_id):
        barrier.wait()
        backend.service().note_client(sid, client_id)

    ids = [c.client_id for c in backend.clients] * 3
    threads = [threading.Thread(target=note, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    told = sorted(c.client_id for c in backend.service().clients_of(sid))
    assert told == sorted(c.client_id for c in backend.clients)


def test_an_inactive_account_has_no_session(backend):
    opened = backend.service().open(backend.user, ["pwd"], None, False, None, None)
    if backend.kind == "memory":
        backend.user.status = "legacy"
    else:
        with backend.sessions.begin() as db:
            db.get(User, backend.user.id).status = "legacy"
    assert backend.service().current(opened.cookie_value) is None

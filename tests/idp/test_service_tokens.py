"""client_credentials tokens without a database write (issue 10), still revocable and
introspectable: nothing is stored at issue; revocation (RFC 7009) puts the ``jti`` on the
deny list, which every replica reads at introspection; a deleted client's tokens end within
ClientService's bound. And the person's token at userinfo and introspection: its grant and
its account in one read. Two app instances share one database and one store (SQLite + an
in-process store, PostgreSQL + Redis), as in test_client_cache."""

from __future__ import annotations

import base64
from urllib.parse import quote

from sqlalchemy import event, func, select

from idp.adapters.sql.models import Grant, RevokedToken, User
from idp.extensions import db
from tests.idp.test_client_cache import BOUND, replicas  # noqa: F401 - the fixture
from tests.idp.test_oauth_checklist import tokens_for, userinfo_status
from tests.idp.test_support import introspect
from tests.support import make_client, make_user

RESOURCE = "urn:elk:linking-service"


def _basic(client_id: str, secret: str) -> dict:
    """RFC 6749 §2.3.1: both form-urlencoded first (the resource server's id has colons)."""
    pair = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def _create(app, **kw) -> tuple[str, str]:
    kw.setdefault("name", "Сервис")
    kw.setdefault("grant_types", ["client_credentials"])
    kw.setdefault("scopes", ["linking:read"])
    with app.app_context():
        created = app.extensions["idp.services"].clients.create(**kw)
        return created.client.client_id, created.secret


def _issue(app, client: tuple[str, str]) -> str:
    response = app.test_client().post(
        "/token",
        headers=_basic(*client),
        data={"grant_type": "client_credentials", "scope": "linking:read", "resource": RESOURCE},
    )
    assert response.status_code == 200, response.data
    return response.get_json()["access_token"]


def _introspect(app, client: tuple[str, str], token: str) -> dict:
    response = app.test_client().post("/introspect", headers=_basic(*client), data={"token": token})
    assert response.status_code == 200, response.data
    return response.get_json()


def _revoke(app, client: tuple[str, str], token: str) -> None:
    response = app.test_client().post("/revoke", headers=_basic(*client), data={"token": token})
    assert response.status_code == 200, response.data


def _count(app, model) -> int:
    with app.app_context():
        try:
            return db.session.scalar(select(func.count()).select_from(model))
        finally:
            db.session.remove()


def test_client_credentials_writes_nothing(replicas):  # noqa: F811
    (a, _), _ = replicas
    service = _create(a)
    _issue(a, service)  # the client is in a's cache now
    with a.app_context():
        statements: list[str] = []

        def record(conn, cursor, statement, *args):
            statements.append(statement)

        event.listen(db.engine, "before_cursor_execute", record)
        try:
            token = _issue(a, service)
        finally:
            event.remove(db.engine, "before_cursor_execute", record)
    assert statements == []
    assert _count(a, Grant) == 0
    body = _introspect(a, service, token)
    assert body["active"] is True
    assert body["client_id"] == body["sub"] == service[0]
    assert body["aud"] == [RESOURCE] and body["scope"] == "linking:read"
    assert body["exp"] > body["iat"] and "auth_time" not in body


def test_a_revoked_service_token_is_inactive_on_every_replica(replicas):  # noqa: F811
    (a, b), _ = replicas
    service = _create(a)
    token, other = _issue(a, service), _issue(a, service)
    assert _introspect(b, service, token)["active"] is True
    _revoke(a, service, token)
    _revoke(a, service, token)  # RFC 7009 §2.2: revoking it again is fine, and changes nothing
    assert _count(a, RevokedToken) == 1
    # No cache in between: the deny list is read from the shared database at introspection.
    assert _introspect(b, service, token) == {"active": False}
    assert _introspect(a, service, token) == {"active": False}
    assert _introspect(b, service, other)["active"] is True  # only that token
    # Another client cannot revoke a token that is not its own (RFC 7009 §2.1).
    stranger = _create(a, name="Чужой")
    _revoke(b, stranger, other)
    assert _introspect(b, service, other)["active"] is True


def test_a_deleted_clients_tokens_are_inactive_within_the_bound(replicas):  # noqa: F811
    """The resource server (a client whose id is the resource) introspects a token addressed
    to it; the token's client is deleted on the other replica, then registered anew with the
    same id: the old token stays inactive."""
    (a, b), clock = replicas
    resource_server = _create(a, name="Сервис привязки", client_id=RESOURCE)
    service = _create(a, client_id="svc-deleted")
    token = _issue(a, service)
    assert _introspect(b, resource_server, token)["active"] is True  # b caches the client
    with a.app_context():
        a.extensions["idp.services"].clients.delete(service[0])
    assert _introspect(a, resource_server, token) == {"active": False}
    clock.advance(BOUND)
    assert _introspect(b, resource_server, token) == {"active": False}
    _create(a, client_id="svc-deleted")
    clock.advance(BOUND)
    assert _introspect(b, resource_server, token) == {"active": False}
    assert _introspect(a, resource_server, token) == {"active": False}


def test_a_service_token_with_a_grant_row_from_before_still_works(replicas):  # noqa: F811
    """Tokens issued before this change have a grant row: introspected and revoked by it."""
    (a, b), _ = replicas
    service = _create(a)
    with a.app_context():
        services = a.extensions["idp.services"]
        issued = services.tokens.issue(
            services.clients.get(service[0]), None, "linking:read", [RESOURCE]
        )
        token = issued.response["access_token"]
        db.session.remove()
    assert _introspect(b, service, token)["active"] is True
    _revoke(a, service, token)
    assert _introspect(b, service, token) == {"active": False}
    assert _count(a, RevokedToken) == 0


def test_a_blocked_or_deleted_holder_ends_userinfo_and_introspection(live):
    """The account read with the grant: blocked without its grants revoked (as a direct
    database change would), the token is refused at userinfo and inactive at introspection;
    deleted, its grants go with it."""
    client = make_client(live)
    _, login = make_user(live)
    tokens = tokens_for(live, client, login)
    assert userinfo_status(live, tokens["access_token"]) == 200
    assert introspect(live, client, tokens["access_token"])["active"] is True
    with live.ctx():
        user = db.session.scalar(select(User).where(User.phone == login))
        user.blocked_at = int(live.clock())
        db.session.commit()
        user_id = user.id
        db.session.remove()
    assert userinfo_status(live, tokens["access_token"]) == 401
    assert introspect(live, client, tokens["access_token"])["active"] is False
    with live.ctx():
        user = db.session.get(User, user_id)
        user.blocked_at = None
        db.session.commit()
        db.session.remove()
    assert userinfo_status(live, tokens["access_token"]) == 200
    with live.ctx():
        db.session.delete(db.session.get(User, user_id))
        db.session.commit()
        db.session.remove()
    assert userinfo_status(live, tokens["access_token"]) == 401
    assert introspect(live, client, tokens["access_token"])["active"] is False

"""Automatic attachment at "account confirmed" is kept until it has run once: the linking
service down at confirmation → the main page says the search will be retried → it is retried
(by ``idp worker``'s sweep or at the next visit) → the accounts are shown once, the flag is
cleared. Real linking service over gRPC, SQLite and PostgreSQL + Redis."""

from __future__ import annotations

import requests

from elk_proto.linking.v1 import linking_pb2 as pb
from idp.adapters.linking_grpc import GrpcLinkingClient
from idp.domain.errors import LinkingFailed
from tests.linking_service.test_idp_auto_attach import mint, register
from tests.support import submit_login

NUMBER = "590000000401"
PASSWORD = "Ночной-поезд-на-Пермь"  # register()'s


def _matching_account(linking, phone: str) -> None:
    linking.add_account(NUMBER, family="Орлова", given="Вера", middle="Павловна", phones=[phone])


def _register_while_down(linking, phone: str) -> str:
    live = linking.idp
    down = GrpcLinkingClient("127.0.0.1:1", mint(live), timeout=0.5)
    live.app.extensions["idp.linking"] = down
    try:
        sub = register(live, phone)
    finally:
        down.close()
    with live.ctx():
        user = live.services.users.get(sub)
        assert user.auto_attach_pending_since is not None and user.auto_attached is None
    return sub


def _signed_in(live, login: str) -> requests.Session:
    http = requests.Session()
    response = submit_login(http, live, http.get(f"{live.url}/login"), login, PASSWORD)
    assert response.status_code in (302, 303)
    return http


def _holders(linking, sub: str) -> list[str]:
    found = linking.stub.ListIdentityAccounts(
        pb.ListIdentityAccountsRequest(subject=sub),
        metadata=linking.auth(linking.service_token("linking:read")),
    )
    return [a.number for a in found.accounts]


def test_down_at_confirmation_then_retried_by_the_worker(linking):
    live = linking.idp
    phone = "+79995550401"
    _matching_account(linking, phone)
    sub = _register_while_down(linking, phone)
    http = _signed_in(live, phone)
    down = GrpcLinkingClient("127.0.0.1:1", mint(live), timeout=0.5)
    live.app.extensions["idp.linking"] = down
    try:
        home = http.get(f"{live.url}/account")
        assert home.status_code == 200 and 'id="auto-pending"' in home.text
        assert "повторим поиск автоматически" in home.text and "UNAVAILABLE" not in home.text
        with live.ctx():
            assert live.services.auto_attach.retry_pending() == 0  # still away: still pending
            assert live.services.users.get(sub).auto_attach_pending_since is not None
    finally:
        down.close()
    up = GrpcLinkingClient(linking.target, mint(live))
    live.app.extensions["idp.linking"] = up
    try:
        with live.ctx():
            assert live.services.auto_attach.retry_pending() == 1
            user = live.services.users.get(sub)
            assert user.auto_attach_pending_since is None and user.auto_attached == [NUMBER]
            assert live.services.auto_attach.retry_pending() == 0  # ran once: never again
            # a repeat of the same request (an answer lost on the way) attaches nothing twice
            assert up.auto_attach(user) == [NUMBER]
        assert _holders(linking, sub) == [NUMBER]
        home = http.get(f"{live.url}/account")
        assert 'id="auto-pending"' not in home.text
        assert home.text.count(f"ЛС № {NUMBER}") == 1
        assert 'id="auto-attached"' in home.text and "Привязаны автоматически" in home.text
    finally:
        up.close()


def test_down_at_confirmation_then_retried_at_the_next_visit(linking):
    live = linking.idp
    phone = "+79995550402"
    _matching_account(linking, phone)
    sub = _register_while_down(linking, phone)
    up = GrpcLinkingClient(linking.target, mint(live))
    live.app.extensions["idp.linking"] = up
    try:
        home = _signed_in(live, phone).get(f"{live.url}/account")
        assert 'id="auto-pending"' not in home.text
        assert home.text.count(f"ЛС № {NUMBER}") == 1 and 'id="auto-attached"' in home.text
        with live.ctx():
            assert live.services.users.get(sub).auto_attach_pending_since is None
        assert _holders(linking, sub) == [NUMBER]
    finally:
        up.close()


def test_up_at_confirmation_attaches_at_once(linking):
    live = linking.idp
    phone = "+79995550403"
    _matching_account(linking, phone)
    up = GrpcLinkingClient(linking.target, mint(live))
    live.app.extensions["idp.linking"] = up
    try:
        sub = register(live, phone)
        with live.ctx():
            user = live.services.users.get(sub)
            assert user.auto_attach_pending_since is None and user.auto_attached == [NUMBER]
    finally:
        up.close()


def test_a_refusal_for_good_ends_the_search(live):
    """A request that can never succeed (here: the same request id with another payload, a
    lost answer after a name change) is not retried for ever."""
    twin = live.app.extensions["idp.linking"]
    twin.auto_failure = LinkingFailed("UNAVAILABLE")
    sub = register(live, "+79995550404")
    with live.ctx():
        user = live.services.users.get(sub)
        assert not live.services.auto_attach.run(user)
        twin.auto_failure = LinkingFailed("REQUEST_ID_REUSED")
        assert live.services.auto_attach.run(user)
        user = live.services.users.get(sub)
        assert user.auto_attach_pending_since is None and user.auto_attached == []
    twin.auto_failure = None


def test_the_demo_person_sees_her_demo_billing_account(linking):
    """`make run`'s demo: `idp demo` creates Иванова Мария Петровна as registration would, and
    the demo billing data's 159000000001 is attached to her automatically."""
    from idp.demo import DEMO_LOGIN, DEMO_PASSWORD, ensure_demo
    from linking_service.billing_demo import load_demo
    from tests.linking_service.conftest import CHEAP

    live = linking.idp
    load_demo(linking.sessions, CHEAP)
    with live.ctx():
        ensure_demo(live.app)
        ensure_demo(live.app)  # idempotent
        demo = live.services.users.find_by_login(DEMO_LOGIN)
        assert demo.region == "Пермский край" and demo.auto_attach_pending_since
    up = GrpcLinkingClient(linking.target, mint(live))
    live.app.extensions["idp.linking"] = up
    try:
        with live.ctx():
            assert live.services.auto_attach.retry_pending() == 1  # `idp worker`'s sweep
        http = requests.Session()
        page = http.get(f"{live.url}/login")
        assert submit_login(http, live, page, DEMO_LOGIN, DEMO_PASSWORD).status_code == 303
        home = http.get(f"{live.url}/account")
        assert home.text.count("ЛС № 159000000001") == 1 and 'id="auto-attached"' in home.text
        assert "159000000002" not in home.text  # another person's
    finally:
        up.close()


def test_the_worker_sweeps_at_once_then_every_interval():
    from idp.services.auto_attach import sweep_until

    runs = []

    class Stop:
        def __init__(self):
            self.waits = 0

        def wait(self, timeout):
            self.waits += 1
            return self.waits == 3

    def retry():
        runs.append(1)
        if len(runs) == 2:
            raise RuntimeError("a database hiccup")  # logged; the lane goes on
        return 0

    sweep_until(retry, Stop(), 30.0)
    assert len(runs) == 3


def test_one_stuck_account_does_not_hold_up_the_others(live):
    from idp.adapters.linking_grpc import RecordingLinkingClient

    live.app.extensions["idp.linking"].auto_failure = LinkingFailed("UNAVAILABLE")
    stuck = register(live, "+79995550405")
    other = register(live, "+79995550406")

    class StuckFor(RecordingLinkingClient):
        def auto_attach(self, user):
            if user.id == stuck:
                raise LinkingFailed("INTERNAL")
            return super().auto_attach(user)

    live.app.extensions["idp.linking"] = StuckFor()
    with live.ctx():
        assert live.services.auto_attach.retry_pending() == 1
        assert live.services.users.get(stuck).auto_attach_pending_since is not None
        assert live.services.users.get(other).auto_attach_pending_since is None

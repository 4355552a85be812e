"""The seam at "account confirmed": the IdP asks the real linking service to attach the new
customer's billing accounts, with a token the IdP minted for itself."""

from __future__ import annotations

import re

from sqlalchemy import select

from elk_proto.linking.v1 import linking_pb2 as pb
from idp.adapters.linking_grpc import GrpcLinkingClient
from idp.adapters.sql.models import OutboxMessage


def mint(live):
    def token():
        with live.ctx():
            return live.services.tokens.service_token("linking:auto", "urn:elk:linking-service")

    return token


def register(live, phone: str):
    from idp.extensions import db

    with live.ctx():
        reg = live.services.registration
        flow_id = reg.start(
            "Орлова", "Вера", "Павловна", "Пермский край", phone, True, "203.0.113.9"
        ).flow.id
    live.drain()
    with live.ctx():
        reg = live.services.registration
        body = db.session.scalar(
            select(OutboxMessage.body)
            .where(OutboxMessage.recipient == phone)
            .order_by(OutboxMessage.id.desc())
        )
        reg.confirm_code(flow_id, re.search(r"\b(\d{6})\b", body).group(1))
        return reg.complete(flow_id, "Ночной-поезд-на-Пермь").id


def test_a_new_account_gets_its_billing_accounts(linking):
    live = linking.idp
    linking.add_account(
        "590000000301", family="Орлова", given="Вера", middle="Павловна", phones=["+79995550301"]
    )
    linking.add_account(
        "590000000302", family="Орлова", given="Вера", middle="Павловна", phones=["+79995559999"]
    )  # no confirmed contact in common
    client = GrpcLinkingClient(linking.target, mint(live))
    live.app.extensions["idp.linking"] = client
    try:
        sub = register(live, "+79995550301")
    finally:
        client.close()
    owner = linking.stub.GetAccountOwner(
        pb.GetAccountOwnerRequest(account_number="590000000301"),
        metadata=linking.auth(linking.service_token("linking:read")),
    )
    assert owner.subject == sub
    other = linking.stub.GetAccountOwner(
        pb.GetAccountOwnerRequest(account_number="590000000302"),
        metadata=linking.auth(linking.service_token("linking:read")),
    )
    assert other.subject == ""


def test_registration_survives_the_linking_service_being_down(live):
    client = GrpcLinkingClient("127.0.0.1:1", mint(live), timeout=0.5)
    live.app.extensions["idp.linking"] = client
    try:
        assert register(live, "+79995550302")  # the account exists; attachment can wait
    finally:
        client.close()


def test_the_previous_holder_is_told_once(linking):
    """Re-attachment event → a notice to the previous holder's contact; replay → no repeat."""
    from idp.services.link_events import LinkEventNotifier
    from tests.linking_service.test_attachment import NUMBER, attach_by_number

    live = linking.idp
    linking.add_account(NUMBER, internet=("perm-inet-1", "inet-pass"))
    first, token_a = linking.user_token()
    _, token_b = linking.user_token()
    attach_by_number(linking, token_a)
    attach_by_number(linking, token_b)
    client = GrpcLinkingClient(linking.target, mint(live))
    try:
        from idp.extensions import db

        with live.ctx():
            services = live.services
            notifier = LinkEventNotifier(db.session, services.store, services.delivery)
            events = client.events(notifier.cursor(), wait=0.8)
            assert [e.type for e in events] == ["attached", "reattached"]
            assert notifier.handle(events) == 1
            assert notifier.cursor() == events[-1].cursor
            # a redelivery (at least once) sends nothing twice; nothing new after the cursor
            assert notifier.handle(events) == 0
            assert client.events(notifier.cursor(), wait=0.8) == []
            user = services.users.get(first)
            phone = user.phone
        body = db_notice(live, phone)
        assert NUMBER in body and "другой учётной записи" in body
    finally:
        client.close()


def db_notice(live, recipient):
    from idp.extensions import db

    live.drain()
    with live.ctx():
        return db.session.scalar(
            select(OutboxMessage.body)
            .where(OutboxMessage.recipient == recipient)
            .order_by(OutboxMessage.id.desc())
        )


def test_two_accounts_moving_away_are_two_notices(linking):
    """Notices about different accounts are not merged by the once-an-hour notice rule."""
    from idp.services.link_events import LinkEvent, LinkEventNotifier
    from tests.support import make_user

    live = linking.idp
    sub, phone = make_user(live)
    from idp.extensions import db

    with live.ctx():
        services = live.services
        notifier = LinkEventNotifier(db.session, services.store, services.delivery)
        events = [
            LinkEvent(i + 1, f"e{i}", "reattached", f"59000000070{i}", "other", sub)
            for i in range(2)
        ]
        assert notifier.handle(events) == 2
    from sqlalchemy import func

    live.drain()
    with live.ctx():
        count = db.session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.recipient == phone)
        )
    assert count == 2

"""One unit of work per use case (issue 7): every use case of the IdP commits once, or not
at all when any of its steps fails.

COMMITs and statements are counted with SQLAlchemy engine events on the real engine, on
SQLite and on PostgreSQL; failures are injected through the ports (a failing SMS gateway
twin, a failing token service twin), never by patching the code under test.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from idp import create_app
from idp.adapters.linking_grpc import RecordingLinkingClient
from idp.adapters.logout_http import RecordingLogoutNotifier
from idp.adapters.outbox import RecordingEmailSender, RecordingSmsSender
from idp.adapters.sql.models import (
    Consent,
    Grant,
    OutboxEntry,
    SsoSession,
    User,
    Verification,
)
from idp.adapters.store_memory import MemoryStore
from idp.config import load_settings
from idp.ports import DeliveryFailed
from idp.services.consents import ConsentService
from idp.services.delivery import DeliveryService, MessageTemplates, SmsPumpingGuard
from idp.services.profile import ProfileService
from idp.services.recovery import RecoveryService
from idp.services.verification import SecretRejected
from tests.conftest import _reset, base_env
from tests.idp.uow_support import counting, issue_refresh, rows, services
from tests.support import PASSWORD, Clock

NEW_PASSWORD = "Зимний-вечер-у-камина"
ADDRESS = "198.51.100.7"


class FailingTokens:
    """A token service twin whose revocation fails: the last step of a use case breaks."""

    def revoke_for(self, *args, **kwargs) -> None:
        raise RuntimeError("token store down")


@pytest.fixture
def app(profile, databases, tmp_path):
    """The app's services without a server; SMS through a gateway twin (``app.sms``)."""
    url = databases[profile]
    _reset(url)
    sms, email = RecordingSmsSender(), RecordingEmailSender()
    built = create_app(
        load_settings(base_env(url, tmp_path)),
        store=MemoryStore(),
        notifier=RecordingLogoutNotifier(),
        clock=Clock(),
        sms=sms,
        email=email,
        linking=RecordingLinkingClient(),
    )
    built.sms = sms
    yield built
    with built.app_context():
        from idp.extensions import db

        db.session.remove()
        db.engine.dispose()


def new_user(app, phone=None) -> str:
    phone = phone or f"+7999{uuid.uuid4().int % 10**7:07d}"
    with app.app_context():
        return services(app).users.create(phone, "Петров", "Иван", PASSWORD).id


def open_session(app, user_id: str) -> str:
    with app.app_context():
        user = services(app).users.get(user_id)
        opened = services(app).sessions.open(user, ["pwd"], None, False, ADDRESS, "test")
        return opened.session.id


def new_client(app) -> str:
    with app.app_context():
        created = services(app).clients.create("Портал", ["https://rp.example.com/cb"])
        return created.client.client_id


def queued(app, to: str) -> list:
    """(purpose, payload) of the side effects queued for ``to`` (the worker would send them
    after commit)."""
    found = rows(app, select(OutboxEntry.purpose, OutboxEntry.payload).order_by(OutboxEntry.id))
    return [entry for entry in found if entry.payload.get("to") == to]


def queued_code(app, to: str) -> str:
    return re.search(r"\b(\d{6})\b", queued(app, to)[-1].payload["text"]).group(1)


class FailingOutbox:
    """An outbox twin that cannot queue: the notice of a use case cannot be written. Its
    failure rolls the transaction back, so what was to be undone on rollback is undone."""

    def __init__(self) -> None:
        self._undo: list = []

    def add(self, *args, **kwargs) -> str:
        for undo in self._undo:
            undo()
        raise RuntimeError("outbox down")

    def on_rollback(self, undo) -> None:
        self._undo.append(undo)


def profile_with(app, outbox) -> ProfileService:
    """The app's profile service, its notices queued into ``outbox``."""
    from idp.extensions import db

    s = services(app)
    delivery = DeliveryService(
        outbox, s.store, MessageTemplates(), SmsPumpingGuard(s.store), s.channels
    )
    return ProfileService(
        db.session,
        s.uow,
        s.verifier,
        delivery,
        s.hasher,
        s.password_policy,
        s.throttle,
        s.sessions,
        s.tokens,
        "http://idp.test",
        s.clock,
    )


def confirmed_recovery(app, phone: str) -> str:
    with app.app_context():
        flow = services(app).recovery.start(phone, ADDRESS)
        code = queued_code(app, phone)
        services(app).recovery.confirm_code(flow.id, code)
        return flow.id


# --- commits per use case -------------------------------------------------------------------


def test_password_change_commits_once(app):
    user_id = new_user(app)
    keep, other = open_session(app, user_id), open_session(app, user_id)
    with app.app_context(), counting(app) as counter:
        user = services(app).users.get(user_id)
        services(app).profile.change_password(user, PASSWORD, NEW_PASSWORD, ADDRESS, keep)
    assert counter.commits == 1, counter.statements
    ended = dict(rows(app, select(SsoSession.id, SsoSession.revoked_at)))
    assert ended[keep] is None and ended[other] is not None
    with app.app_context():
        phone = services(app).users.get(user_id).phone
    assert queued(app, phone)[-1].purpose == "password_changed"  # queued in that one commit


def test_recovery_completion_commits_once(app):
    phone = f"+7999{uuid.uuid4().int % 10**7:07d}"
    user_id = new_user(app, phone)
    flow_id = confirmed_recovery(app, phone)
    with app.app_context(), counting(app) as counter:
        services(app).recovery.reset(flow_id, NEW_PASSWORD)
    assert counter.commits == 1, counter.statements
    with app.app_context():
        user = services(app).users.get(user_id)
        assert services(app).hasher.verify(user.password_hash, NEW_PASSWORD)


def test_registration_confirmation_commits_once(app):
    phone = f"+7999{uuid.uuid4().int % 10**7:07d}"
    with app.app_context():
        registration = services(app).registration
        flow = registration.start("Орлова", "Вера", None, "Пермский край", phone, True, ADDRESS)
        code = queued_code(app, phone)
        with counting(app) as confirming:
            registration.confirm_code(flow.flow.id, code)
        with counting(app) as completing:
            registration.complete(flow.flow.id, NEW_PASSWORD)
    assert confirming.commits == 1, confirming.statements
    # Two use cases: the account (its automatic attachment pending) and the completed flow in
    # one commit; then, once the linking service has answered outside any transaction, the
    # search's result in a second one (idp/services/auto_attach.py). The first holds the
    # account, the flow, the audit row "account.registered" and the account's last update.
    assert completing.commits == 2, completing.statements
    assert completing.statements[:4] == ["INSERT", "UPDATE", "INSERT", "UPDATE"], (
        completing.statements
    )


def test_registration_completion_commits_once_when_linking_is_away(app):
    from idp.domain.errors import LinkingFailed

    phone = f"+7999{uuid.uuid4().int % 10**7:07d}"
    app.extensions["idp.linking"].auto_failure = LinkingFailed("UNAVAILABLE")
    with app.app_context():
        registration = services(app).registration
        flow = registration.start("Орлова", "Вера", None, "Пермский край", phone, True, ADDRESS)
        registration.confirm_code(flow.flow.id, queued_code(app, phone))
        with counting(app) as completing:
            user = registration.complete(flow.flow.id, NEW_PASSWORD)
        assert services(app).users.get(user.id).auto_attach_pending_since is not None
    assert completing.commits == 1, completing.statements


def test_registration_start_and_its_sms_commit_once(make_live):
    """The SMS is queued in the caller's unit of work (the worker sends it after commit; none
    runs here, so only the request's own commits are counted)."""
    live = make_live(outbox_worker=False)
    with live.ctx(), counting(live.app) as counter:
        live.services.registration.start(
            "Орлова", "Вера", None, "Пермский край", "+79995550077", True, ADDRESS
        )
    assert counter.commits == 1, counter.statements
    assert counter.statements.count("INSERT") == 2  # the flow and its outbox entry


def test_app_revocation_commits_once(app):
    user_id, client_id = new_user(app), new_client(app)
    with app.app_context():
        services(app).consents.grant(user_id, client_id, ["openid"])
    issue_refresh(app, user_id, client_id)
    with app.app_context(), counting(app) as counter:
        assert services(app).consents.revoke_app(user_id, client_id)
    assert counter.commits == 1
    assert rows(app, select(Consent.user_id)) == []
    assert all(r.revoked_at for r in rows(app, select(Grant.revoked_at)))


# --- all or nothing -------------------------------------------------------------------------


def test_password_change_is_undone_when_its_notice_cannot_be_queued(app):
    user_id = new_user(app)
    keep, other = open_session(app, user_id), open_session(app, user_id)
    issue_refresh(app, user_id, new_client(app))
    with app.app_context(), pytest.raises(RuntimeError, match="outbox down"):
        user = services(app).users.get(user_id)
        profile_with(app, FailingOutbox()).change_password(
            user, PASSWORD, NEW_PASSWORD, ADDRESS, keep
        )
    with app.app_context():
        user = services(app).users.get(user_id)
        assert services(app).hasher.verify(user.password_hash, PASSWORD)
    assert all(r.revoked_at is None for r in rows(app, select(SsoSession.revoked_at)))
    assert all(r.revoked_at is None for r in rows(app, select(Grant.revoked_at)))
    assert other


def test_recovery_completion_is_undone_when_revoking_tokens_fails(app):
    phone = f"+7999{uuid.uuid4().int % 10**7:07d}"
    user_id = new_user(app, phone)
    open_session(app, user_id)
    flow_id = confirmed_recovery(app, phone)
    with app.app_context():
        s = services(app)
        from idp.extensions import db

        broken = RecoveryService(
            db.session,
            s.uow,
            s.verifier,
            s.delivery,
            s.hasher,
            s.password_policy,
            s.sessions,
            FailingTokens(),
            "http://idp.test",
            s.clock,
        )
        with pytest.raises(RuntimeError, match="token store down"):
            broken.reset(flow_id, NEW_PASSWORD)
    with app.app_context():
        assert services(app).hasher.verify(services(app).users.get(user_id).password_hash, PASSWORD)
    assert rows(app, select(Verification.state)) == [("confirmed",)]
    assert all(r.revoked_at is None for r in rows(app, select(SsoSession.revoked_at)))
    # Nothing half-done: the real service completes the same flow afterwards.
    with app.app_context():
        services(app).recovery.reset(flow_id, NEW_PASSWORD)
    assert rows(app, select(Verification.state)) == [("completed",)]


def test_app_revocation_keeps_the_consent_when_revoking_tokens_fails(app):
    user_id, client_id = new_user(app), new_client(app)
    with app.app_context():
        s = services(app)
        s.consents.grant(user_id, client_id, ["openid"])
        from idp.extensions import db

        broken = ConsentService(db.session, s.uow, FailingTokens(), s.clock)
        with pytest.raises(RuntimeError, match="token store down"):
            broken.revoke_app(user_id, client_id)
    assert rows(app, select(Consent.client_id)) == [(client_id,)]


def test_registration_start_leaves_nothing_when_the_sms_channel_is_down(app):
    with app.app_context():
        for _ in range(3):  # the worker saw the gateway fail three times in a row
            services(app).channels.failed("sms")
    with app.app_context(), pytest.raises(DeliveryFailed):
        services(app).registration.start(
            "Орлова", "Вера", None, "Пермский край", "+79995550078", True, ADDRESS
        )
    assert rows(app, select(Verification.id)) == []
    assert rows(app, select(OutboxEntry.id)) == []


def test_contact_change_is_undone_when_its_notice_fails_and_the_code_still_works(app):
    old_phone = f"+7999{uuid.uuid4().int % 10**7:07d}"
    new_phone = f"+7999{uuid.uuid4().int % 10**7:07d}"
    user_id = new_user(app, old_phone)
    with app.app_context():
        profile = services(app).profile
        user = services(app).users.get(user_id)
        flow_id = profile.start_contact_change(user, new_phone, PASSWORD, ADDRESS).id
        code = queued_code(app, new_phone)
        wrong = f"{(int(code) + 1) % 1_000_000:06d}"
        with pytest.raises(SecretRejected):
            profile.confirm_contact_code(user, flow_id, wrong, ADDRESS)
        # the notice to the old number cannot be queued
        with pytest.raises(RuntimeError, match="outbox down"):
            profile_with(app, FailingOutbox()).confirm_contact_code(user, flow_id, code, ADDRESS)
    assert rows(app, select(User.phone)) == [(old_phone,)]
    # The wrong code stays counted; the right one was not spent.
    assert rows(app, select(Verification.state, Verification.attempts)) == [("code_sent", 1)]
    with app.app_context():
        user = services(app).users.get(user_id)
        services(app).profile.confirm_contact_code(user, flow_id, code, ADDRESS)
    assert rows(app, select(User.phone)) == [(new_phone,)]
    assert queued(app, old_phone)[-1].purpose == "contact_changed"  # told through the old one


# --- the rule itself --------------------------------------------------------------------------

SERVICES = Path(__file__).resolve().parents[2] / "idp" / "services"


def test_services_commit_only_through_the_unit_of_work():
    offenders = [
        f"{path.name}:{n}"
        for path in sorted(SERVICES.glob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"\.(commit|rollback)\(\)", line)
    ]
    assert offenders == []


def test_nested_blocks_join_the_outer_transaction(app):
    with app.app_context(), counting(app) as counter:
        s = services(app)
        with s.uow.transaction():
            user_id = s.users.create("+79995550079", "Петров", "Иван", PASSWORD).id
            s.clients.create("Портал", ["https://rp.example.com/cb"])
            assert s.uow.active
        assert not s.uow.active
    assert counter.commits == 1
    assert rows(app, select(User.id).where(User.id == user_id)) == [(user_id,)]


# --- a first password on an account made without one (social sign-up) ----------------------


def passwordless_user(app) -> str:
    from idp.extensions import db

    user_id = new_user(app)
    with app.app_context(), services(app).uow.transaction():
        db.session.get(User, user_id).password_hash = None
    return user_id


def test_first_password_commits_once_with_its_audit_notice_and_revocations(app):
    user_id = passwordless_user(app)
    keep, other = open_session(app, user_id), open_session(app, user_id)
    issue_refresh(app, user_id, new_client(app))
    with app.app_context():
        auth_time = services(app).sessions.get(keep).auth_time
    with app.app_context(), counting(app) as counter:
        user = services(app).users.get(user_id)
        services(app).profile.change_password(user, "", NEW_PASSWORD, ADDRESS, keep, auth_time)
    assert counter.commits == 1, counter.statements
    ended = dict(rows(app, select(SsoSession.id, SsoSession.revoked_at)))
    assert ended[keep] is None and ended[other] is not None
    assert all(r.revoked_at for r in rows(app, select(Grant.revoked_at)))
    with app.app_context():
        user = services(app).users.get(user_id)
        assert services(app).hasher.verify(user.password_hash, NEW_PASSWORD)
        kinds = [e.event_type for e in services(app).audit.recent(user_id)]
        assert "password.set" in kinds and "password.changed" not in kinds
        phone = user.phone
    assert queued(app, phone)[-1].purpose == "password_set"


def test_first_password_after_a_stale_sign_in_changes_nothing(app):
    from idp.services.profile import REAUTH_WINDOW, FreshSignInNeeded

    user_id = passwordless_user(app)
    keep = open_session(app, user_id)
    with app.app_context():
        auth_time = services(app).sessions.get(keep).auth_time
        user = services(app).users.get(user_id)
        with pytest.raises(FreshSignInNeeded):
            services(app).profile.change_password(
                user, PASSWORD, NEW_PASSWORD, ADDRESS, keep, auth_time - REAUTH_WINDOW
            )
        with pytest.raises(FreshSignInNeeded):  # no session time at all
            services(app).profile.start_contact_change(user, "+79995550299", "", ADDRESS)
        assert services(app).users.get(user_id).password_hash is None

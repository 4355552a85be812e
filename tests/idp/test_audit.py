"""The security audit trail (issue 11): events written in the transaction of the change they
record, with who, what, when, address and user agent, never a secret; the person's own list
in «Персональная информация». Every ``live`` test runs on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from idp.domain.audit import EVENT_TYPES
from idp.domain.errors import ValidationError
from idp.services.link_events import LinkEvent, LinkEventNotifier
from tests.idp import test_unit_of_work as uow_tests
from tests.support import PASSWORD, csrf_of, make_user, submit_login

app = uow_tests.app  # the fixture: the app's services without a server

UA = "AuditTest/1.0 (X11; Linux)"


def sign_in(live, login, password=PASSWORD, http=None):
    http = http or requests.Session()
    http.headers["User-Agent"] = UA
    page = http.get(f"{live.url}/login", timeout=10)
    return http, submit_login(http, live, page, login, password)


def events_of(live, sub):
    with live.ctx():
        return live.services.audit.recent(sub, 100)


def test_sign_in_success_and_failure_are_recorded_with_address_and_user_agent(live):
    sub, login = make_user(live)
    http, failed = sign_in(live, login, "не-тот-пароль-1")
    assert failed.status_code == 200
    _, ok = sign_in(live, login, http=http)
    assert ok.status_code == 303
    events = events_of(live, sub)
    assert [e.event_type for e in events] == [
        "signin.success",
        "signin.failure",
        "account.registered",
    ]
    success, failure, _ = events
    assert success.address == failure.address == "127.0.0.1"
    assert success.user_agent == failure.user_agent == UA
    assert success.details["method"] == "pwd"
    assert failure.details == {"reason": "wrong_password"}
    stored = json.dumps([e.as_json() for e in events], ensure_ascii=False)
    assert PASSWORD not in stored and "не-тот-пароль-1" not in stored


def test_a_lockout_is_recorded(make_live):
    live = make_live(IDP_LOGIN_MAX_FAILURES="2")
    sub, login = make_user(live)
    for _ in range(4):
        sign_in(live, login, "не-тот-пароль-1")
    types = [e.event_type for e in events_of(live, sub)]
    assert "signin.locked" in types and "signin.failure" in types


def test_password_change_and_ended_sessions_are_recorded(live):
    sub, login = make_user(live)
    http, _ = sign_in(live, login)
    _, other = sign_in(live, login)  # a second browser, ended by the change
    page = http.get(f"{live.url}/account/profile", timeout=10)
    changed = http.post(
        f"{live.url}/account/profile/password",
        data={
            "csrf_token": csrf_of(page.text),
            "current_password": PASSWORD,
            "new_password": "другой-пароль-на-зиму-77",
        },
        allow_redirects=False,
        timeout=10,
    )
    assert changed.status_code == 303, changed.text[:300]
    events = events_of(live, sub)
    assert events[0].event_type in ("password.changed", "session.ended")
    by_type = {e.event_type: e for e in events}
    assert by_type["password.changed"].address == "127.0.0.1"
    assert by_type["session.ended"].details["reason"] == "password_changed"


def test_the_person_sees_own_recent_events_newest_first_in_russian_and_english(live):
    sub, login = make_user(live)
    sign_in(live, login, "не-тот-пароль-1")
    http, _ = sign_in(live, login)
    page = http.get(f"{live.url}/account/profile", timeout=10)
    assert "События безопасности" in page.text
    table = page.text[page.text.index('id="security-events"') :]
    first, second = table.index("Вход в кабинет"), table.index("Неудачная попытка входа")
    assert first < second < table.index("Регистрация учётной записи")
    english = http.get(f"{live.url}/account/profile?lang=en", timeout=10)
    assert "Security events" in english.text
    assert "Failed sign-in attempt" in english.text


def test_an_event_rolls_back_with_its_use_case_and_bad_events_are_refused(live):
    sub, _ = make_user(live)
    with live.ctx():
        services = live.services
        with pytest.raises(RuntimeError), services.uow.transaction():
            services.audit.record("social.link", subject=sub, details={"provider": "vk"})
            raise RuntimeError("the link failed after the event was written")
        with pytest.raises(ValidationError):
            services.audit.record("social.linked", subject=sub)
        with pytest.raises(ValidationError):
            services.audit.record("social.link", subject=sub, details={"access_token": "x"})
        services.audit.record("social.unlink", subject=sub, details={"provider": "ok"})
    types = [e.event_type for e in events_of(live, sub)]
    assert "social.link" not in types and types[0] == "social.unlink"


def test_billing_events_are_recorded_for_both_holders_with_the_cursor(live):
    taker, _ = make_user(live)
    holder, _ = make_user(live, login="holder@example.com")
    events = [
        LinkEvent(1, "ev-1", "attached", "100000000001", holder, ""),
        LinkEvent(2, "ev-2", "reattached", "100000000001", taker, holder),
        LinkEvent(3, "ev-3", "detached", "100000000001", taker, ""),
    ]
    from idp.extensions import db

    with live.ctx():
        services = live.services
        notifier = LinkEventNotifier(
            db.session, services.store, services.delivery, uow=services.uow, audit=services.audit
        )
        notifier.handle(events)
        assert notifier.cursor() == 3
    mine = [(e.event_type, e.details.get("event_id")) for e in events_of(live, taker)]
    theirs = [(e.event_type, e.details.get("event_id")) for e in events_of(live, holder)]
    assert mine[:2] == [("billing.detach", "ev-3"), ("billing.reattach", "ev-2")]
    assert theirs[:2] == [("billing.taken", "ev-2"), ("billing.attach", "ev-1")]


def test_the_event_list_is_closed_and_documented():
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    for name in EVENT_TYPES:
        assert f"`{name}`" in readme, f"{name} is not in the README's audit table"


# --- the account lifecycle's events, written with their change ------------------------------


def test_lifecycle_events_commit_with_their_change_or_not_at_all(app):
    from tests.idp.test_unit_of_work import (
        ADDRESS,
        NEW_PASSWORD,
        FailingOutbox,
        confirmed_recovery,
        new_user,
        open_session,
        profile_with,
        queued_code,
        services,
    )

    def types(user_id):
        with app.app_context():
            return [e.event_type for e in services(app).audit.recent(user_id, 100)]

    phone = "+79995550101"
    with app.app_context():
        registration = services(app).registration
        flow = registration.start("Орлова", "Вера", None, "Пермский край", phone, True, ADDRESS)
        registration.confirm_code(flow.flow.id, queued_code(app, phone))
        registered = registration.complete(flow.flow.id, NEW_PASSWORD).id
    assert types(registered) == ["account.registered"]

    user_id = new_user(app, "+79995550102")
    open_session(app, user_id)
    recovery_flow = confirmed_recovery(app, "+79995550102")
    with app.app_context():
        services(app).recovery.reset(recovery_flow, NEW_PASSWORD)
    assert set(types(user_id)[:2]) == {"session.ended", "password.recovered"}

    new_phone = "+79995550103"
    with app.app_context():
        user = services(app).users.get(user_id)
        flow_id = (
            services(app).profile.start_contact_change(user, new_phone, NEW_PASSWORD, ADDRESS).id
        )
        code = queued_code(app, new_phone)
        with pytest.raises(RuntimeError, match="outbox down"):
            profile_with(app, FailingOutbox()).confirm_contact_code(user, flow_id, code, ADDRESS)
    assert "contact.changed" not in types(user_id)  # rolled back with the change
    with app.app_context():
        user = services(app).users.get(user_id)
        services(app).profile.confirm_contact_code(user, flow_id, code, ADDRESS)
        (changed,) = [
            e for e in services(app).audit.recent(user_id) if e.event_type == "contact.changed"
        ]
    assert changed.address == ADDRESS and changed.details == {"kind": "phone", "added": False}


# --- the port: the SQL adapter and its memory twin keep the same contract ---------------------


@pytest.fixture(params=["memory", "sql"])
def audit_log(request, live):
    if request.param == "memory":
        from idp.adapters.persistence_memory import MemoryAuditLog

        yield MemoryAuditLog(), lambda: None
        return
    from idp.adapters.sql.audit import SqlAuditLog
    from idp.extensions import db

    with live.ctx():
        yield SqlAuditLog(db.session), db.session.commit
        db.session.remove()


def test_audit_log_contract(audit_log):
    from idp.domain.audit import AuditEvent

    log, commit = audit_log
    for at, subject in [(100, "a"), (200, "b"), (300, "a"), (300, "a"), (400, None)]:
        log.add(AuditEvent("signin.failure", at, subject=subject, details={"at": at}))
    commit()
    recent = log.recent("a", 2)
    assert [e.at for e in recent] == [300, 300] and recent[0].id > recent[1].id
    assert [e.at for e in log.between(200)] == [200, 300, 300, 400]
    assert [e.at for e in log.between(100, 300, "a")] == [100]
    first = log.between(0, limit=2)
    second = log.between(0, after=first[-1].id, limit=2)
    assert [e.at for e in first + second] == [100, 200, 300, 300]
    assert log.purge_before(300, 1) == 1 and log.purge_before(300, 5) == 1
    commit()
    assert [e.at for e in log.between(0)] == [300, 300, 400]


def test_the_export_reads_page_by_page_and_misses_nothing(live):
    sub, _ = make_user(live)
    with live.ctx():
        audit = live.services.audit
        for n in range(5):
            audit.record("session.ended", subject=sub, details={"n": n})
        exported = list(audit.export(0, subject=sub, page=2))
    assert [e.event_type for e in exported] == ["account.registered"] + ["session.ended"] * 5
    assert [e.details.get("n") for e in exported[1:]] == [0, 1, 2, 3, 4]

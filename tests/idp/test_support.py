"""The support desk (issue 11): find an account by phone or e-mail, see and lift its
lockout, end its sessions, block and unblock it; every action audited with the operator's
name. Over real HTTP on SQLite and on PostgreSQL + Redis."""

from __future__ import annotations

import pytest
import requests

from idp.domain.errors import AccountBlocked, NotFound, ValidationError
from tests.idp.test_oauth_checklist import assert_oauth_error, refresh, tokens_for, userinfo_status
from tests.support import PASSWORD, make_client, make_user, submit_login

GENERIC = "Неверный логин или пароль."
BLOCKED = "Вход в учётную запись приостановлен"


def login_page(live, login, password):
    http = requests.Session()
    page = http.get(f"{live.url}/login", timeout=10)
    return http, submit_login(http, live, page, login, password)


def introspect(live, client, token) -> dict:
    response = requests.post(
        f"{live.url}/introspect",
        auth=(client.client_id, client.secret),
        data={"token": token},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()


def audit_of(live, sub):
    with live.ctx():
        return live.services.audit.recent(sub, 100)


def test_find_by_phone_in_any_notation_or_e_mail(live):
    sub, _ = make_user(live, login="+79991112233")
    mail_sub, _ = make_user(live, login="Ivan.Petrov@Example.com")
    with live.ctx():
        support = live.services.support
        assert support.find("8 (999) 111-22-33", "Ольга").id == sub
        assert support.find("+7 999 111 22 33", "Ольга").id == sub
        assert support.find("ivan.petrov@example.com", "Ольга").id == mail_sub
        assert support.find(sub, "Ольга").id == sub
        with pytest.raises(NotFound):
            support.find("+79990000000", "Ольга")
        with pytest.raises(ValidationError):
            support.find("не телефон", "Ольга")
        with pytest.raises(ValidationError):
            support.find("+79991112233", "  ")  # no operator, no action


def test_show_and_unlock_a_locked_out_account(make_live):
    live = make_live(IDP_LOGIN_MAX_FAILURES="2")
    sub, login = make_user(live)
    for _ in range(3):
        login_page(live, login, "не-тот-пароль-1")
    _, refused = login_page(live, login, PASSWORD)
    assert GENERIC in refused.text  # locked: the right password does not help
    with live.ctx():
        state = live.services.support.show(login, "Ольга")
        assert state.failures >= 3 and state.locked_for > 0
        live.services.support.unlock(login, "Ольга")
        assert live.services.support.show(login, "Ольга").locked_for == 0
    _, ok = login_page(live, login, PASSWORD)
    assert ok.status_code == 303
    operators = {e.event_type: e.operator for e in audit_of(live, sub) if e.operator}
    assert operators == {"support.lookup": "Ольга", "support.unlocked": "Ольга"}


def test_a_blocked_account_cannot_sign_in_and_its_tokens_stop_working(live):
    sub, login = make_user(live)
    client = make_client(
        live,
        scopes=["openid", "profile", "offline_access"],
        backchannel_logout_uri="https://rp.example.com/backchannel",
    )
    tokens = tokens_for(live, client, login)
    browser, signed_in = login_page(live, login, PASSWORD)
    assert signed_in.status_code == 303
    assert introspect(live, client, tokens["access_token"])["active"] is True

    with live.ctx():
        live.services.support.block(login, "Ольга", reason="заявление клиента")

    # The public learns nothing: a wrong password gets the usual answer...
    _, wrong = login_page(live, login, "не-тот-пароль-1")
    assert GENERIC in wrong.text and BLOCKED not in wrong.text
    # ...and the person, with the right password, learns to call support.
    _, right = login_page(live, login, PASSWORD)
    assert right.status_code == 200 and BLOCKED in right.text and GENERIC not in right.text
    # Its sessions are over (the portal is told by back-channel logout), its tokens refused.
    (notice,) = live.outbox_rows(kind="logout")
    assert notice.payload["sub"] == sub
    page = browser.get(f"{live.url}/account/profile", allow_redirects=False, timeout=10)
    assert page.status_code == 303 and "/login" in page.headers["Location"]
    assert_oauth_error(refresh(live, client, tokens["refresh_token"]), "invalid_grant")
    assert userinfo_status(live, tokens["access_token"]) == 401
    assert introspect(live, client, tokens["access_token"])["active"] is False
    assert introspect(live, client, tokens["refresh_token"])["active"] is False

    with live.ctx():
        user = live.services.users.get(sub)
        with pytest.raises(AccountBlocked):  # any other sign-in method is refused too
            live.services.sessions.open(user, ["ext"], None, False, "127.0.0.1", "test")
        live.services.support.unblock(login, "Ольга")
    _, again = login_page(live, login, PASSWORD)
    assert again.status_code == 303
    events = {e.event_type: e for e in audit_of(live, sub)}
    assert events["support.blocked"].operator == "Ольга"
    assert events["support.blocked"].details == {"reason": "заявление клиента"}
    assert events["support.unblocked"].operator == "Ольга"
    assert events["signin.blocked"].address == "127.0.0.1"
    assert events["session.ended"].details["reason"] == "support"


def test_end_all_sessions(live):
    sub, login = make_user(live)
    first, _ = login_page(live, login, PASSWORD)
    second, _ = login_page(live, login, PASSWORD)
    with live.ctx():
        assert live.services.support.end_sessions(login, "Ольга") == 2
    for browser in (first, second):
        page = browser.get(f"{live.url}/account/profile", allow_redirects=False, timeout=10)
        assert page.status_code == 303
    (event,) = [e for e in audit_of(live, sub) if e.event_type == "support.sessions_ended"]
    assert event.operator == "Ольга" and event.details == {"sessions": 2}

"""Registration's last step under failure: only a contact taken meanwhile is "taken"; any other
failure keeps the confirmed flow so the person can retry; an illegal step is said, not skipped.
Over real HTTP on SQLite and PostgreSQL; the failure is the database's own (a trigger)."""

from __future__ import annotations

from contextlib import contextmanager

import requests
from sqlalchemy import func, select, text

from idp.adapters.sql.models import User, Verification
from tests.idp.test_registration_flow import NEW_PASSWORD, last_code, post_form, step1
from tests.support import make_user

TAKEN = "эти контактные данные уже заняты"


@contextmanager
def new_accounts_refused(live):
    """A trigger that makes the database refuse every new account with an integrity error
    (SQLite: RAISE(ABORT); PostgreSQL: check_violation) that is not about the contact."""
    from idp.extensions import db

    if live.profile == "pg-redis":
        create = [
            "CREATE FUNCTION refuse_users() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'refused by the test' USING ERRCODE = 'check_violation'; "
            "END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_users BEFORE INSERT ON users "
            "FOR EACH ROW EXECUTE FUNCTION refuse_users()",
        ]
        drop = ["DROP TRIGGER refuse_users ON users", "DROP FUNCTION refuse_users()"]
    else:
        create = [
            "CREATE TRIGGER refuse_users BEFORE INSERT ON users "
            "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        ]
        drop = ["DROP TRIGGER refuse_users"]

    def run(statements):
        with live.ctx():
            for statement in statements:
                db.session.execute(text(statement))
            db.session.commit()

    run(create)
    try:
        yield
    finally:
        run(drop)


def confirmed_flow(live, phone_notation: str, e164: str) -> requests.Session:
    """A browser whose registration flow has reached «Придумайте пароль»."""
    http = requests.Session()
    assert step1(http, live, phone_notation).status_code == 303
    response = post_form(http, live, "/register/confirm", code=last_code(live, e164))
    assert response.headers["Location"].endswith("/register/password")
    return http


def flow_states(live) -> list[str]:
    from idp.extensions import db

    with live.ctx():
        return list(db.session.scalars(select(Verification.state).order_by(Verification.state)))


def accounts(live, phone: str) -> int:
    from idp.extensions import db

    with live.ctx():
        return db.session.scalar(select(func.count()).select_from(User).where(User.phone == phone))


def test_a_contact_registered_meanwhile_is_taken(live):
    http = confirmed_flow(live, "+7 999 555-20-01", "+79995552001")
    make_user(live, "+79995552001")  # another account takes the number before step 3
    late = post_form(http, live, "/register/password", password=NEW_PASSWORD)
    assert late.status_code == 409 and TAKEN in late.text
    assert accounts(live, "+79995552001") == 1


def test_a_failure_that_is_not_the_contact_keeps_the_confirmed_flow(live):
    http = confirmed_flow(live, "+7 999 555-20-02", "+79995552002")
    with new_accounts_refused(live):
        failed = post_form(http, live, "/register/password", password=NEW_PASSWORD)
    assert failed.status_code == 500
    assert TAKEN not in failed.text  # not told a lie about the contact
    assert flow_states(live) == ["confirmed"]  # the flow is kept, in the database ...
    page = http.get(f"{live.url}/register/password", allow_redirects=False)
    assert page.status_code == 200 and 'name="password"' in page.text  # ... and in the session
    retried = post_form(http, live, "/register/password", password=NEW_PASSWORD)
    assert retried.status_code == 303 and "/account" in retried.headers["Location"]
    assert accounts(live, "+79995552002") == 1
    assert flow_states(live) == ["completed"]


def test_confirming_a_confirmed_flow_again_is_an_error_the_person_sees(live):
    http = requests.Session()
    assert step1(http, live, "+7 999 555-20-03").status_code == 303
    code = last_code(live, "+79995552003")
    first = post_form(http, live, "/register/confirm", code=code)
    assert first.status_code == 303 and first.headers["Location"].endswith("/register/password")
    again = post_form(http, live, "/register/confirm", code=code)
    assert again.status_code == 409
    assert 'role="alert"' in again.text and "Этот код или ссылка уже использованы" in again.text
    assert flow_states(live) == ["confirmed"]

"""Redis stopped mid-traffic: sign-in and SMS sending answer 503 with a clear page and check
no password; code checks keep their limits in the database; all recover by themselves when
Redis returns, without restarting the IdP."""

from __future__ import annotations

import requests

from idp.adapters.store_redis import RedisStore
from idp.services.verification import RESEND_COOLDOWN
from tests.idp.test_login import sso_cookie
from tests.idp.test_registration_flow import last_code, step1
from tests.support import PASSWORD, csrf_of, make_user

UNAVAILABLE = "Сервис временно недоступен"
PERSON = {
    "family_name": "Соколова",
    "given_name": "Анна",
    "contact": "8 (999) 555-40-02",
    "region": "Пермский край",
    "accept": "1",
}


def sign_in(http, live, login, password, csrf):
    return http.post(
        f"{live.url}/login",
        data={"csrf_token": csrf, "login": login, "password": password},
        allow_redirects=False,
    )


def post(http, live, path, csrf, **data):
    return http.post(f"{live.url}{path}", data={"csrf_token": csrf, **data}, allow_redirects=False)


def assert_unavailable(response):
    assert response.status_code == 503, (response.status_code, response.text[:300])
    assert UNAVAILABLE in response.text and "Traceback" not in response.text
    assert int(response.headers["Retry-After"]) > 0


def test_redis_stopped_then_back(own_redis, start_idp, tmp_path):
    store = RedisStore(own_redis.url, prefix="fault:", timeout=0.5)
    live = start_idp(f"sqlite:///{tmp_path / 'idp.sqlite3'}", store)
    _, login = make_user(live)
    http = requests.Session()
    csrf = csrf_of(http.get(f"{live.url}/login").text)
    assert sign_in(http, live, login, PASSWORD, csrf).status_code == 303

    # A registration by phone waits for its SMS code when Redis goes away.
    joining = requests.Session()
    assert step1(joining, live, "8 (999) 555-40-01").status_code == 303
    code = last_code(live, "+79995554001")
    joining_csrf = csrf_of(joining.get(f"{live.url}/register/confirm").text)

    guesser = requests.Session()
    guesser_csrf = csrf_of(guesser.get(f"{live.url}/login").text)
    newcomer = requests.Session()
    newcomer_csrf = csrf_of(newcomer.get(f"{live.url}/register").text)

    own_redis.stop()

    # Sign-in: every attempt refused before any password is checked, the right one too.
    for attempt in range(15):
        assert_unavailable(sign_in(guesser, live, login, f"guess-{attempt}", guesser_csrf))
    refused = sign_in(guesser, live, login, PASSWORD, guesser_csrf)
    assert_unavailable(refused)
    assert sso_cookie(refused) is None
    # SMS sending: a new registration and a resend.
    assert_unavailable(newcomer.get(f"{live.url}/register"))
    assert_unavailable(post(newcomer, live, "/register", newcomer_csrf, **PERSON))
    # Code checks count failures in the database: still limited without Redis.
    for _ in range(5):
        wrong = post(joining, live, "/register/confirm", joining_csrf, code="000000")
        assert wrong.status_code == 400
    locked = post(joining, live, "/register/confirm", joining_csrf, code=code)
    assert locked.status_code == 400  # five failures spent the code, right or not
    live.clock.advance(RESEND_COOLDOWN + 1)
    assert_unavailable(post(joining, live, "/register/resend", joining_csrf))
    assert live.app.test_client().get("/readyz").get_json()["down"] == ["store"]

    own_redis.start()  # empty: Redis keeps nothing here

    assert live.app.test_client().get("/readyz").status_code == 200
    wrong = sign_in(guesser, live, login, "still-wrong", guesser_csrf)
    assert wrong.status_code == 200 and sso_cookie(wrong) is None  # checked, and refused
    assert sign_in(guesser, live, login, PASSWORD, guesser_csrf).status_code == 303
    assert post(joining, live, "/register/resend", joining_csrf).status_code == 303
    code = last_code(live, "+79995554001")
    confirmed = post(joining, live, "/register/confirm", joining_csrf, code=code)
    assert confirmed.headers["Location"].endswith("/register/password")

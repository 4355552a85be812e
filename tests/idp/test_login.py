"""The sign-in page over real HTTP: one generic failure, logins in any notation, throttling per
account and per address, fail-closed on a dead store, session fixation, cookie flags, CSRF
and same-origin checks, security headers, oversized input and open redirects."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from idp import create_app
from idp.adapters.store_memory import MemoryStore
from idp.adapters.store_redis import RedisStore
from idp.config import load_settings
from idp.domain.errors import AuthenticationFailed
from tests.conftest import base_env
from tests.support import (
    PASSWORD,
    Clock,
    Live,
    csrf_of,
    make_client,
    make_user,
    submit_login,
)

GENERIC = "Неверный логин или пароль."
ALERT = re.compile(r'<div class="alert" role="alert"[^>]*>(.*?)</div>', re.S)
THIRTY_DAYS = 30 * 24 * 3600


# --- helpers ----------------------------------------------------------------------------------


def login_page(http: requests.Session, live, **params) -> requests.Response:
    page = http.get(f"{live.url}/login", params=params, allow_redirects=False)
    assert page.status_code == 200, (page.status_code, page.text[:300])
    assert 'name="password"' in page.text
    return page


def attempt(live, login: str, password: str, remember: bool = False, http=None):
    """A fresh browser opens the sign-in page and submits it once."""
    http = http or requests.Session()
    return submit_login(http, live, login_page(http, live), login, password, remember=remember)


def set_cookie_headers(response) -> list[str]:
    """Every Set-Cookie header of a requests or a Werkzeug test-client response."""
    raw = getattr(response, "raw", None)
    if raw is not None and hasattr(raw, "headers"):
        return list(raw.headers.getlist("Set-Cookie"))
    return list(response.headers.getlist("Set-Cookie"))


def sso_cookie(response, name: str = "elk_sso") -> tuple[str, dict[str, str]] | None:
    """(value, {attribute-lowercase: value}) of the SSO cookie set by ``response``, if any."""
    for header in set_cookie_headers(response):
        first, *attrs = [p.strip() for p in header.split(";")]
        cname, _, value = first.partition("=")
        if cname == name:
            parsed = {}
            for attr in attrs:
                key, _, val = attr.partition("=")
                parsed[key.strip().lower()] = val.strip()
            return value, parsed
    return None


def sso_cookies_named(response) -> list[str]:
    return [h for h in set_cookie_headers(response) if "elk_sso=" in h.split(";")[0]]


def normalised(body: str, login: str) -> str:
    """The page without what legitimately differs between two requests: the echoed login
    and the (time-stamped) CSRF token."""
    body = re.sub(r'name="csrf_token" value="[^"]*"', 'name="csrf_token" value=""', body)
    return body.replace(login, "{login}")


def succeeded(response) -> bool:
    return response.status_code == 303 and sso_cookie(response) is not None


def assert_generic_failure(response, what: str = "") -> None:
    assert response.status_code == 200, (what, response.status_code, response.text[:300])
    alert = ALERT.search(response.text)
    assert alert, f"no error block on the page {what}"
    assert alert.group(1).strip() == GENERIC, what
    assert sso_cookie(response) is None, what


class VerifySpy:
    """Records every password verification; ``stored is not None`` means the caller's guess
    was really compared with the account's hash (the locked and unknown-login paths verify
    against ``None`` only to spend the same time)."""

    def __init__(self, real) -> None:
        self.real = real
        self.calls: list[bool] = []
        self._lock = threading.Lock()

    def __call__(self, stored, password):
        with self._lock:
            self.calls.append(stored is not None)
        return self.real(stored, password)

    @property
    def checks(self) -> int:
        return sum(self.calls)


@pytest.fixture
def spy_on_verify(monkeypatch):
    def install(live) -> VerifySpy:
        hasher = live.services.hasher
        spy = VerifySpy(hasher.verify)
        monkeypatch.setattr(hasher, "verify", spy)
        return spy

    return install


# --- one generic failure ------------------------------------------------------------------


def test_unknown_login_wrong_password_and_locked_account_look_the_same(make_live, spy_on_verify):
    live = make_live(IDP_LOGIN_MAX_FAILURES="3")
    _, login = make_user(live)
    unknown = "+7999" + ("1234567" if login[5:] != "1234567" else "7654321")
    assert len(unknown) == len(login)
    spy = spy_on_verify(live)

    wrong = attempt(live, login, "неверный-пароль-1")
    unknown_response = attempt(live, unknown, "неверный-пароль-1")

    # Fail until the account is locked: the attempt is then refused without looking at the
    # account's password hash (the spy sees only the dummy verification).
    locked = None
    for _ in range(10):
        before = len(spy.calls)
        response = attempt(live, login, "неверный-пароль-1")
        if spy.calls[before:] == [False]:
            locked = response
            break
    assert locked is not None, "the account never locked"
    # Locked with the RIGHT password: still the same answer, so it reveals nothing.
    locked_right = attempt(live, login, PASSWORD)
    assert spy.calls[-1] is False

    responses = {
        "wrong password": (wrong, login),
        "unknown login": (unknown_response, unknown),
        "locked": (locked, login),
        "locked, right password": (locked_right, login),
    }
    for what, (response, value) in responses.items():
        assert_generic_failure(response, what)
        # the login is echoed back, escaped, for correction
        assert f'value="{value}"' in response.text, what
    reference = normalised(wrong.text, login)
    for what, (response, value) in responses.items():
        assert response.status_code == wrong.status_code, what
        assert ALERT.search(response.text).group(0) == ALERT.search(wrong.text).group(0), what
        assert normalised(response.text, value) == reference, what


# --- logins in any notation ----------------------------------------------------------------


def test_phone_login_in_other_notations(live):
    _, login = make_user(live)
    d = login[2:]  # ten digits after +7
    notations = [
        f"8 {d[:3]} {d[3:6]} {d[6:8]} {d[8:]}",
        f"+7 ({d[:3]}) {d[3:6]}-{d[6:8]}-{d[8:]}",
        f"8({d[:3]}){d[3:6]}-{d[6:8]}-{d[8:]}",
        f"  {login}  ",
    ]
    for notation in notations:
        http = requests.Session()
        response = attempt(live, notation, PASSWORD, http=http)
        assert succeeded(response), (notation, response.status_code, response.text[:200])
        account = http.get(f"{live.url}/account", allow_redirects=False)
        assert account.status_code == 200, notation
        assert "Петров Иван" in account.text


def test_email_login_case_insensitive(live):
    make_user(live, login="x@example.ru")
    for notation in ("x@example.ru", "X@Example.RU", " x@example.ru "):
        assert succeeded(attempt(live, notation, PASSWORD)), notation
    assert_generic_failure(attempt(live, "x@example.ru", "не-тот-пароль"))


# --- per-account throttling ---------------------------------------------------------------


def test_account_locks_after_max_failures_and_refuses_the_right_password(make_live):
    live = make_live(IDP_LOGIN_MAX_FAILURES="3")
    _, login = make_user(live)
    for _ in range(3):
        assert_generic_failure(attempt(live, login, "неверный-пароль"))
    # Three failures: the account is locked, the right password included.
    assert_generic_failure(attempt(live, login, PASSWORD))
    assert_generic_failure(attempt(live, login, PASSWORD))


def test_account_lock_ends_after_the_lockout_window(make_live):
    live = make_live(IDP_LOGIN_MAX_FAILURES="3")
    if live.profile != "embedded":
        pytest.skip(
            "Redis expires keys on its own clock; the test clock cannot advance it "
            "(the lock itself is asserted on both profiles by the test above)"
        )
    _, login = make_user(live)
    for _ in range(6):
        assert_generic_failure(attempt(live, login, "неверный-пароль"))
    assert_generic_failure(attempt(live, login, PASSWORD))
    # Never permanent: past the longest window (IDP_LOGIN_LOCKOUT_MAX, 1 hour) the right
    # password works again, and success resets the count.
    live.clock.advance(3600 + 1)
    assert succeeded(attempt(live, login, PASSWORD))
    assert succeeded(attempt(live, login, PASSWORD))


def test_101_guesses_from_101_addresses_stop_after_max_failures(make_live, spy_on_verify):
    """One address each, so only the per-account limit can stop them (NIST SP 800-63B
    §5.2.2: at most 100 consecutive failures). The first lock lasts an hour here, so a slow
    machine (90 dummy argon2id verifications) cannot outlive it."""
    live = make_live(IDP_LOGIN_LOCKOUT_BASE="3600")
    sub, login = make_user(live)
    max_failures = live.app.extensions["idp.settings"].login_max_failures
    spy = spy_on_verify(live)
    reached_check = []
    with live.ctx():
        auth = live.services.auth
        for n in range(1, 102):
            password = PASSWORD if n == 101 else f"guess-{n:03d}"
            before = spy.checks
            with pytest.raises(AuthenticationFailed):
                auth.authenticate(login, password, f"203.0.113.{n}")
            if spy.checks > before:
                reached_check.append(n)
    # attempt 101 carried the right password and was refused (asserted above); in fact
    # no guess after the first max_failures was compared with the password at all.
    assert reached_check == list(range(1, max_failures + 1)), reached_check


def fifty_parallel_guesses_at_the_threshold(make_live, spy_on_verify):
    """Three failures (the limit), then 50 wrong guesses at once from 50 addresses, through
    the service (the test cannot fake addresses over HTTP). Returns (live, spy, counter
    before, counter after, results)."""
    live = make_live(IDP_LOGIN_MAX_FAILURES="3")
    sub, login = make_user(live)
    account = f"user:{sub}"
    with live.ctx():
        for n in range(3):
            with pytest.raises(AuthenticationFailed):
                live.services.auth.authenticate(login, "неверный-пароль", f"192.0.2.{n}")
        before = live.services.throttle.failures(account)
    assert before == 3
    spy = spy_on_verify(live)
    barrier = threading.Barrier(50)

    def guess(n: int) -> str:
        with live.ctx():
            barrier.wait(10)
            try:
                live.services.auth.authenticate(login, f"guess-{n}", f"198.51.100.{n + 1}")
            except AuthenticationFailed:
                return "refused"
            return "signed in"

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(guess, range(50)))
    with live.ctx():
        after = live.services.throttle.failures(account)
    return spy, before, after, results


def test_parallel_guesses_at_the_threshold_reach_the_password_check_at_most_once(
    make_live, spy_on_verify
):
    spy, _, _, results = fifty_parallel_guesses_at_the_threshold(make_live, spy_on_verify)
    assert results == ["refused"] * 50
    assert len(spy.calls) == 50  # every attempt still spends one verification (timing)
    assert spy.checks <= 1, f"{spy.checks} parallel guesses reached the password check"


def test_parallel_guesses_at_the_threshold_are_all_counted(make_live, spy_on_verify):
    _, before, after, results = fifty_parallel_guesses_at_the_threshold(make_live, spy_on_verify)
    assert results == ["refused"] * 50
    assert after - before == 50, f"the failure counter grew by {after - before}, not 50"


# --- per-address throttling ----------------------------------------------------------------


def test_address_is_throttled_after_max_failures_whatever_the_account(make_live):
    live = make_live(IDP_ADDRESS_MAX_FAILURES="5")
    _, victim = make_user(live)
    _, other = make_user(live)
    assert succeeded(attempt(live, other, PASSWORD))  # successes do not count
    for n in range(5):
        assert_generic_failure(attempt(live, victim if n % 2 else f"+7999888000{n}", "спрей-1"))
    # Sixth attempt from the same address: another account, the right password: 429.
    http = requests.Session()
    page = login_page(http, live)
    response = submit_login(http, live, page, other, PASSWORD)
    assert response.status_code == 429, (response.status_code, response.text[:200])
    assert int(response.headers["Retry-After"]) > 0
    assert sso_cookie(response) is None
    # X-Forwarded-For is not trusted by default: a forged address changes nothing.
    forged = http.post(
        f"{live.url}/login",
        data={"csrf_token": csrf_of(page.text), "login": other, "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.77"},
        allow_redirects=False,
    )
    assert forged.status_code == 429
    assert sso_cookie(forged) is None


# --- the store is down: fail closed -----------------------------------------------------------


def test_store_down_fails_closed(databases, tmp_path):
    env = base_env(databases["embedded"], tmp_path)
    env["IDP_ISSUER"] = "http://127.0.0.1:8000"
    app = create_app(load_settings(env), store=RedisStore("redis://127.0.0.1:1", timeout=0.2))
    helper = Live("http://127.0.0.1:8000", app, Clock())
    _, login = make_user(helper)
    try:
        browser = app.test_client()
        page = browser.get("/login")
        assert page.status_code == 200
        response = browser.post(
            "/login",
            data={
                "csrf_token": csrf_of(page.get_data(as_text=True)),
                "login": login,
                "password": PASSWORD,
            },
        )
        assert response.status_code == 503
        assert int(response.headers["Retry-After"]) > 0
        assert not [h for h in response.headers.getlist("Set-Cookie") if "elk_sso" in h]
        assert browser.get("/account").status_code == 303
    finally:
        with app.app_context():
            from idp.extensions import db

            db.session.remove()
            db.engine.dispose()


# --- session fixation ---------------------------------------------------------------------


def test_sign_in_replaces_the_session_cookie(live):
    _, login = make_user(live)
    http = requests.Session()
    page = login_page(http, live)
    planted = "attacker-chosen-value-0123456789abcdef"
    first = http.post(
        f"{live.url}/login",
        data={"csrf_token": csrf_of(page.text), "login": login, "password": PASSWORD},
        cookies={"elk_sso": planted},
        allow_redirects=False,
    )
    assert succeeded(first)
    old_value = sso_cookie(first)[0]
    assert old_value != planted

    # Signing in again while holding a valid session cookie: a new value, the old one dead.
    account = http.get(f"{live.url}/account", cookies={"elk_sso": old_value}, allow_redirects=False)
    assert account.status_code == 200
    second = http.post(
        f"{live.url}/login",
        data={"csrf_token": csrf_of(account.text), "login": login, "password": PASSWORD},
        cookies={"elk_sso": old_value},
        allow_redirects=False,
    )
    assert succeeded(second)
    new_value = sso_cookie(second)[0]
    assert new_value != old_value
    stale = requests.get(
        f"{live.url}/account", cookies={"elk_sso": old_value}, allow_redirects=False
    )
    assert stale.status_code == 303 and stale.headers["Location"].endswith("/login")
    fresh = requests.get(
        f"{live.url}/account", cookies={"elk_sso": new_value}, allow_redirects=False
    )
    assert fresh.status_code == 200


# --- cookie flags -----------------------------------------------------------------------------


def test_sso_cookie_flags_over_http(live):
    _, login = make_user(live)
    plain = attempt(live, login, PASSWORD)
    assert succeeded(plain)
    assert len(sso_cookies_named(plain)) == 1
    _, attrs = sso_cookie(plain)
    assert "httponly" in attrs
    assert attrs["samesite"].lower() == "lax"
    assert attrs["path"] == "/"
    assert "domain" not in attrs
    assert "max-age" not in attrs and "expires" not in attrs  # a browser-session cookie

    remembered = attempt(live, login, PASSWORD, remember=True)
    assert succeeded(remembered)
    _, attrs = sso_cookie(remembered)
    assert int(attrs["max-age"]) == THIRTY_DAYS
    assert "httponly" in attrs and attrs["samesite"].lower() == "lax" and attrs["path"] == "/"


def test_sso_cookie_over_https_is_host_prefixed_and_secure(databases, tmp_path):
    env = base_env(databases["embedded"], tmp_path)
    env["IDP_ISSUER"] = "https://idp.example.ru"
    app = create_app(load_settings(env), store=MemoryStore())
    helper = Live("https://idp.example.ru", app, Clock())
    _, login = make_user(helper)
    try:
        browser = app.test_client()
        page = browser.get("/login", base_url="https://idp.example.ru")
        assert page.status_code == 200
        for remember, max_age in ((False, None), (True, str(THIRTY_DAYS))):
            data = {
                "csrf_token": csrf_of(page.get_data(as_text=True)),
                "login": login,
                "password": PASSWORD,
            }
            if remember:
                data["remember"] = "on"
            response = browser.post("/login", data=data, base_url="https://idp.example.ru")
            assert response.status_code == 303, response.get_data(as_text=True)[:300]
            assert sso_cookie(response, "elk_sso") is None
            value, attrs = sso_cookie(response, "__Host-elk_sso")
            assert value
            assert "secure" in attrs and "httponly" in attrs
            assert attrs["samesite"].lower() == "lax"
            assert attrs["path"] == "/" and "domain" not in attrs  # what __Host- requires
            assert attrs.get("max-age") == max_age
            assert response.headers["Strict-Transport-Security"].startswith("max-age=")
            page = browser.get("/account", base_url="https://idp.example.ru")
            assert page.status_code == 200
    finally:
        with app.app_context():
            from idp.extensions import db

            db.session.remove()
            db.engine.dispose()


# --- CSRF and same-origin ------------------------------------------------------------------


def test_login_post_requires_csrf_token_and_same_origin(live):
    _, login = make_user(live)
    http = requests.Session()
    page = login_page(http, live)
    token = csrf_of(page.text)
    url = f"{live.url}/login"
    good = {"csrf_token": token, "login": login, "password": PASSWORD}

    missing = http.post(url, data={"login": login, "password": PASSWORD}, allow_redirects=False)
    assert missing.status_code == 403 and sso_cookie(missing) is None
    forged = http.post(url, data={**good, "csrf_token": token[:-4] + "AAAA"}, allow_redirects=False)
    assert forged.status_code == 403 and sso_cookie(forged) is None
    for headers in (
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        {"Origin": live.url, "Sec-Fetch-Site": "cross-site"},
    ):
        response = http.post(url, data=good, headers=headers, allow_redirects=False)
        assert response.status_code == 403, headers
        assert sso_cookie(response) is None, headers
    # Control: the very same token from our own origin signs in.
    ok = http.post(
        url,
        data=good,
        headers={"Origin": live.url, "Sec-Fetch-Site": "same-origin"},
        allow_redirects=False,
    )
    assert succeeded(ok)


def test_same_origin_post_from_a_no_referrer_page_signs_in(live):
    """Our pages send ``Referrer-Policy: no-referrer``; browsers then serialise the origin of
    a form post as ``null`` even on the same origin (Fetch, "serializing a request origin"),
    which is exactly what Chromium sends (tests/e2e/test_browser.py). Sec-Fetch-Site tells
    the truth, and the CSRF token still guards: such a post must sign in."""
    _, login = make_user(live)
    http = requests.Session()
    page = login_page(http, live)
    response = http.post(
        f"{live.url}/login",
        data={"csrf_token": csrf_of(page.text), "login": login, "password": PASSWORD},
        headers={"Origin": "null", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"},
        allow_redirects=False,
    )
    assert succeeded(response), (response.status_code, response.text[:200])


def signed_in(live, login) -> tuple[requests.Session, str]:
    http = requests.Session()
    assert succeeded(attempt(live, login, PASSWORD, http=http))
    account = http.get(f"{live.url}/account", allow_redirects=False)
    assert account.status_code == 200
    return http, csrf_of(account.text)


CROSS_SITE = ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"})


def test_logout_confirm_refuses_cross_site_posts(live):
    _, login = make_user(live)
    http, token = signed_in(live, login)
    for headers in CROSS_SITE:
        response = http.post(
            f"{live.url}/logout/confirm",
            data={"csrf_token": token},
            headers=headers,
            allow_redirects=False,
        )
        assert response.status_code == 403, headers
        assert http.get(f"{live.url}/account", allow_redirects=False).status_code == 200
    missing = http.post(f"{live.url}/logout/confirm", data={}, allow_redirects=False)
    assert missing.status_code == 403
    # Control: the same post from our own pages logs out.
    done = http.post(
        f"{live.url}/logout/confirm",
        data={"csrf_token": token},
        headers={"Origin": live.url},
        allow_redirects=False,
    )
    assert done.status_code == 303
    assert http.get(f"{live.url}/account", allow_redirects=False).status_code == 303


def test_revoking_an_app_refuses_cross_site_posts(live):
    client = make_client(live, first_party=False, name="Сторонний сервис")
    sub, login = make_user(live)
    with live.ctx():
        live.services.consents.grant(sub, client.client_id, ["openid", "profile"])
    http, token = signed_in(live, login)
    url = f"{live.url}/account/apps/{client.client_id}/revoke"

    def consent_exists() -> bool:
        with live.ctx():
            return live.services.consents.covers(sub, client.client_id, ["openid"])

    for headers in CROSS_SITE:
        response = http.post(
            url, data={"csrf_token": token}, headers=headers, allow_redirects=False
        )
        assert response.status_code == 403, headers
        assert consent_exists()
    assert http.post(url, data={}, allow_redirects=False).status_code == 403
    assert consent_exists()
    done = http.post(url, data={"csrf_token": token}, allow_redirects=False)
    assert done.status_code == 303
    assert not consent_exists()


# --- security headers ---------------------------------------------------------------------


def test_security_headers_on_the_login_page(live):
    _, login = make_user(live)
    get = requests.get(f"{live.url}/login", allow_redirects=False)
    failed = attempt(live, login, "неверный-пароль")
    for response in (get, failed):
        headers = response.headers
        csp = [d.strip() for d in headers["Content-Security-Policy"].split(";")]
        assert "frame-ancestors 'none'" in csp
        assert "default-src 'none'" in csp
        assert not any("unsafe-inline" in d or "unsafe-eval" in d for d in csp)
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert "no-store" in headers["Cache-Control"]


# --- oversized input ----------------------------------------------------------------------


def test_ten_megabyte_body_is_refused(live):
    _, login = make_user(live)
    http = requests.Session()
    token = csrf_of(login_page(http, live).text)
    try:
        response = http.post(
            f"{live.url}/login",
            data={"csrf_token": token, "login": login, "password": "я" * (5 * 1024 * 1024)},
            allow_redirects=False,
            timeout=30,
        )
    except requests.ConnectionError as exc:  # the server may close before reading it all
        pytest.fail(f"the server dropped the connection instead of answering 413: {exc}")
    assert response.status_code == 413
    assert sso_cookie(response) is None


def test_huge_password_is_a_generic_failure(live):
    _, login = make_user(live)
    # Far beyond the 128-character password limit but within the request-size limit: the
    # ordinary failure page.
    assert_generic_failure(attempt(live, login, "p" * 60_000))
    # One megabyte: refused as a whole request (413) or as a generic failure; never a sign-in
    # and never a 500.
    http = requests.Session()
    token = csrf_of(login_page(http, live).text)
    response = http.post(
        f"{live.url}/login",
        data={"csrf_token": token, "login": login, "password": "p" * (1024 * 1024)},
        allow_redirects=False,
        timeout=30,
    )
    if response.status_code == 413:
        assert sso_cookie(response) is None
    else:
        assert_generic_failure(response)
    # and the account is not harmed by it
    assert succeeded(attempt(live, login, PASSWORD))


# --- open redirects -----------------------------------------------------------------------


@pytest.mark.parametrize("target", ["https://evil.com", "//evil.com", "/\\evil.com"])
def test_login_never_redirects_off_site(live, target):
    _, login = make_user(live)
    http = requests.Session()
    response = http.get(f"{live.url}/login", params={"interaction": target}, allow_redirects=False)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert "Время на вход истекло" in response.text
    # Posting credentials with such an "interaction" does not sign in or leave the site.
    token = csrf_of(login_page(http, live).text)
    posted = http.post(
        f"{live.url}/login",
        data={"csrf_token": token, "login": login, "password": PASSWORD, "interaction": target},
        allow_redirects=False,
    )
    assert posted.status_code == 400
    assert "Location" not in posted.headers
    # A next=/return_to parameter is ignored: after sign-in the user lands on the account.
    page = login_page(http, live, next=target, return_to=target)
    signed = submit_login(http, live, page, login, PASSWORD)
    assert signed.status_code == 303
    location = signed.headers["Location"]
    assert location == "/account" or location.startswith(live.url + "/"), location

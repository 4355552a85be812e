"""Consent for third-party clients and the OIDC ``prompt``/``max_age``/``login_hint``
parameters, driven over real HTTP through the pages a browser would see."""

from __future__ import annotations

import html
import re

import pytest
import requests

from tests.support import (
    PASSWORD,
    authorize_url,
    callback_params,
    csrf_of,
    follow_local,
    make_client,
    make_user,
    pkce_pair,
    sign_in_and_authorize,
    submit_login,
)

SCOPES = "openid profile email phone offline_access"
LABELS = {
    "openid": "Идентификатор вашей учётной записи",
    "profile": "Фамилия, имя и отчество",
    "email": "Адрес электронной почты",
    "phone": "Номер мобильного телефона",
    "offline_access": "Доступ к данным, когда вы не в сети",
}
EXPIRED = "Время на вход истекло"


# --- helpers ----------------------------------------------------------------------------------


def is_login_page(response) -> bool:
    return response.status_code == 200 and 'name="password"' in response.text


def is_consent_page(response) -> bool:
    return response.status_code == 200 and 'name="decision"' in response.text


def start(http, live, client, **params):
    """GET /authorize and follow the redirects that stay on the IdP."""
    verifier, challenge = pkce_pair()
    params.setdefault("scope", SCOPES)
    url = authorize_url(live, client, challenge, **params)
    response = follow_local(http, live, http.get(url, allow_redirects=False))
    return response, verifier, url


def decide(http, live, consent_page, decision: str):
    action = re.search(r'<form method="post" action="([^"]+)"', consent_page.text).group(1)
    response = http.post(
        live.url + action,
        data={"csrf_token": csrf_of(consent_page.text), "decision": decision},
        allow_redirects=False,
    )
    return follow_local(http, live, response)


def sign_in(http, live, login):
    page = http.get(f"{live.url}/login", allow_redirects=False)
    response = submit_login(http, live, page, login, PASSWORD)
    assert response.status_code == 303, response.text[:300]


def assert_code(response, client, live, state=None) -> dict:
    params = callback_params(response)
    assert response.headers["Location"].startswith(client.redirect_uri + "?")
    assert "code" in params and "error" not in params, params
    assert params["iss"] == live.url
    if state is not None:
        assert params["state"] == state
    return params


def assert_error(response, client, live, error: str, state: str) -> None:
    params = callback_params(response)
    assert response.headers["Location"].startswith(client.redirect_uri + "?")
    assert params["error"] == error, params
    assert "code" not in params
    assert params["state"] == state
    assert params["iss"] == live.url


def exchange(live, client, code, verifier) -> dict:
    response = requests.post(
        f"{live.url}/token",
        auth=(client.client_id, client.secret),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": client.redirect_uri,
            "code_verifier": verifier,
        },
        timeout=5,
    )
    assert response.status_code == 200, response.text
    return response.json()


def refresh(live, client, refresh_token) -> requests.Response:
    return requests.post(
        f"{live.url}/token",
        auth=(client.client_id, client.secret),
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        timeout=5,
    )


def state_of(url: str) -> str:
    return re.search(r"[?&]state=([^&]+)", url).group(1)


# --- consent --------------------------------------------------------------------------------


def test_third_party_consent_deny_allow_remember_prompt_and_revoke(live):
    partner = make_client(
        live,
        first_party=False,
        name="Сервис партнёра",
        redirect_uris=["https://partner.example.com/cb"],
    )
    other = make_client(
        live,
        first_party=False,
        name="Другой партнёр",
        redirect_uris=["https://other.example.com/cb"],
    )
    sub, login = make_user(live)
    http = requests.Session()

    # First visit: sign in, then the consent page lists the requested scopes in Russian.
    verifier, challenge = pkce_pair()
    url = authorize_url(live, partner, challenge, scope=SCOPES)
    page = sign_in_and_authorize(http, live, url, login, PASSWORD, consent=False)
    assert is_consent_page(page), page.text[:300]
    assert "«Сервис партнёра»" in page.text
    listed = dict(re.findall(r'<li data-scope="([^"]+)">([^<]+)</li>', page.text))
    assert listed == LABELS
    assert "Разрешить" in page.text and "Отказать" in page.text

    # «Отказать»: back to the client with access_denied, its state and our issuer.
    assert_error(decide(http, live, page, "deny"), partner, live, "access_denied", state_of(url))
    with live.ctx():
        assert not live.services.consents.covers(sub, partner.client_id, ["openid"])

    # Denial is not remembered: the next authorization asks again; «Разрешить» gives a code.
    page, verifier, url = start(http, live, partner)
    assert is_consent_page(page)
    params = assert_code(decide(http, live, page, "allow"), partner, live, state_of(url))
    tokens = exchange(live, partner, params["code"], verifier)
    assert tokens["refresh_token"]

    # Remembered: the second authorization goes straight to the client.
    response, _, url = start(http, live, partner)
    assert_code(response, partner, live, state_of(url))

    # prompt=consent shows the page again although consent exists.
    page, verifier, url = start(http, live, partner, prompt="consent")
    assert is_consent_page(page)
    assert_code(decide(http, live, page, "allow"), partner, live, state_of(url))

    # A second third-party app with its own tokens, to see that revocation is per client.
    page, other_verifier, _ = start(http, live, other)
    other_params = assert_code(decide(http, live, page, "allow"), other, live)
    other_tokens = exchange(live, other, other_params["code"], other_verifier)

    # Revoke on /account (with the page's CSRF token).
    account = http.get(f"{live.url}/account", allow_redirects=False)
    assert account.status_code == 200
    assert "Сервис партнёра" in account.text
    revoked = http.post(
        f"{live.url}/account/apps/{partner.client_id}/revoke",
        data={"csrf_token": csrf_of(account.text)},
        allow_redirects=False,
    )
    assert revoked.status_code == 303
    assert "Сервис партнёра" not in http.get(f"{live.url}/account").text

    # The partner's refresh tokens are dead ...
    dead = refresh(live, partner, tokens["refresh_token"])
    assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"
    # ... the other app's are not,
    alive = refresh(live, other, other_tokens["refresh_token"])
    assert alive.status_code == 200, alive.text
    # and the next authorization asks again.
    page, _, _ = start(http, live, partner)
    assert is_consent_page(page)


def test_first_party_clients_never_see_consent(live):
    portal = make_client(live, first_party=True)
    _, login = make_user(live)
    http = requests.Session()
    verifier, challenge = pkce_pair()
    url = authorize_url(live, portal, challenge, scope=SCOPES)
    assert_code(
        sign_in_and_authorize(http, live, url, login, PASSWORD, consent=False),
        portal,
        live,
        state_of(url),
    )
    for prompt in (None, "consent"):
        response, _, url = start(http, live, portal, prompt=prompt)
        assert not is_consent_page(response)
        assert_code(response, portal, live, state_of(url))
    # prompt=none works for a first-party client with a session: no consent needed.
    response, _, url = start(http, live, portal, prompt="none")
    assert_code(response, portal, live, state_of(url))


# --- prompt --------------------------------------------------------------------------------------


def test_prompt_none_without_a_session_is_login_required(live):
    portal = make_client(live)
    http = requests.Session()
    response, _, url = start(http, live, portal, prompt="none")
    assert_error(response, portal, live, "login_required", state_of(url))


def test_prompt_none_without_consent_is_consent_required(live):
    partner = make_client(live, first_party=False, name="Сервис партнёра")
    _, login = make_user(live)
    http = requests.Session()
    sign_in(http, live, login)
    response, _, url = start(http, live, partner, prompt="none")
    assert_error(response, partner, live, "consent_required", state_of(url))
    # with consent given, prompt=none returns a code silently
    page, _, _ = start(http, live, partner)
    assert is_consent_page(page)
    decide(http, live, page, "allow")
    response, _, url = start(http, live, partner, prompt="none")
    assert_code(response, partner, live, state_of(url))


def test_prompt_login_asks_again_and_then_issues_the_code(live):
    portal = make_client(live)
    _, login = make_user(live)
    http = requests.Session()
    sign_in(http, live, login)
    old_cookie = http.cookies.get("elk_sso")

    page, verifier, url = start(http, live, portal, prompt="login")
    assert is_login_page(page), (page.status_code, page.text[:200])
    response = follow_local(http, live, submit_login(http, live, page, login, PASSWORD))
    params = assert_code(response, portal, live, state_of(url))  # no loop back to the login
    assert http.cookies.get("elk_sso") != old_cookie
    tokens = exchange(live, portal, params["code"], verifier)
    assert tokens["id_token"]


def test_max_age_zero_forces_a_fresh_sign_in(live):
    portal = make_client(live)
    _, login = make_user(live)
    http = requests.Session()
    sign_in(http, live, login)
    live.clock.advance(5)
    page, _, url = start(http, live, portal, max_age="0")
    assert is_login_page(page)
    response = follow_local(http, live, submit_login(http, live, page, login, PASSWORD))
    assert_code(response, portal, live, state_of(url))


def test_large_max_age_reuses_the_session(live):
    portal = make_client(live)
    _, login = make_user(live)
    http = requests.Session()
    sign_in(http, live, login)
    live.clock.advance(5)
    response, _, url = start(http, live, portal, max_age="86400")
    assert not is_login_page(response)
    assert_code(response, portal, live, state_of(url))
    # and it does ask once the session is older than max_age
    live.clock.advance(60)
    page, _, _ = start(http, live, portal, max_age="30")
    assert is_login_page(page)


def test_login_hint_prefills_the_login_field(live):
    portal = make_client(live)
    _, login = make_user(live)
    http = requests.Session()
    page, _, url = start(http, live, portal, login_hint=login)
    assert is_login_page(page)
    field = re.search(r'<input id="login"[^>]*>', page.text).group(0)
    assert f'value="{login}"' in field
    assert "Тестовый портал" in page.text  # the page names the client
    response = follow_local(http, live, submit_login(http, live, page, login, PASSWORD))
    assert_code(response, portal, live, state_of(url))
    # a hostile hint is escaped, not markup
    hostile = '"><script>alert(1)</script>'
    page, _, _ = start(requests.Session(), live, portal, login_hint=hostile)
    assert "<script>alert(1)</script>" not in page.text
    assert html.escape(hostile, quote=True) in page.text or "&#34;&gt;&lt;script&gt;" in page.text


# --- expired interaction ------------------------------------------------------------------


def test_expired_interaction_is_a_400_page(live):
    portal = make_client(live)
    _, login = make_user(live)
    http = requests.Session()
    page, _, _ = start(http, live, portal)
    assert is_login_page(page)
    uid = re.search(r'name="interaction" value="([^"]+)"', page.text).group(1)
    if live.profile == "embedded":
        live.clock.advance(15 * 60 + 1)
    else:
        # Redis expires keys on its own clock, which the test cannot advance: check that the
        # interaction carries a TTL of at most 15 minutes, then let it "expire" by deleting it.
        assert 0 < live.store.ttl(f"interaction:{uid}") <= 15 * 60
        live.store.delete(f"interaction:{uid}")
    again = http.get(f"{live.url}/login", params={"interaction": uid}, allow_redirects=False)
    assert again.status_code == 400
    assert EXPIRED in again.text
    # Submitting the stale form: still 400, no sign-in, no redirect anywhere.
    posted = submit_login(http, live, page, login, PASSWORD)
    assert posted.status_code == 400
    assert EXPIRED in posted.text
    assert "Location" not in posted.headers
    assert "elk_sso" not in http.cookies
    resumed = http.get(f"{live.url}/authorize/resume/{uid}", allow_redirects=False)
    assert resumed.status_code == 400


@pytest.mark.parametrize("prompt", ["none login", "bogus"])
def test_invalid_prompt_is_refused(live, prompt):
    portal = make_client(live)
    response, _, url = start(requests.Session(), live, portal, prompt=prompt)
    assert_error(response, portal, live, "invalid_request", state_of(url))

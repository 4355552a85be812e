"""Security checklist §4 (OAuth/OIDC, items 1–13), attacked over real HTTP.

Each test quotes its checklist item. Every test takes ``live`` (or ``make_live``) and so runs
on SQLite + in-memory store and on PostgreSQL + Redis.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from tests.support import (
    PASSWORD,
    authorize_url,
    callback_params,
    csrf_of,
    make_client,
    make_user,
    pkce_pair,
    sign_in_and_authorize,
)

TIMEOUT = 10
RP = "https://rp.example.com/cb"
OFFLINE = "openid offline_access"


# --- helpers ---------------------------------------------------------------------------------


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize(live, client, login, http=None, verifier=None, **params):
    """Sign ``login`` in through the real pages; return (client callback params, verifier)."""
    verifier = verifier or pkce_pair()[0]
    url = authorize_url(live, client, s256(verifier), **params)
    response = sign_in_and_authorize(http or requests.Session(), live, url, login, PASSWORD)
    return callback_params(response), verifier


def code_for(live, client, login, **kw) -> tuple[str, str]:
    params, verifier = authorize(live, client, login, **kw)
    assert "code" in params, params
    return params["code"], verifier


def post_token(live, client, auth=None, **form) -> requests.Response:
    """POST /token authenticating as ``client``: basic (default), post, or none (id only)."""
    auth = auth or ("basic" if client.secret else "none")
    data = {k: v for k, v in form.items() if v is not None}
    basic = None
    if auth == "basic":
        basic = (client.client_id, client.secret)
    else:
        data["client_id"] = client.client_id
        if auth == "post":
            data["client_secret"] = client.secret
    return requests.post(f"{live.url}/token", data=data, auth=basic, timeout=TIMEOUT)


def redeem(live, client, code, verifier, auth=None, **form) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "code_verifier": verifier,
        "redirect_uri": client.redirect_uri,
        **form,
    }
    return post_token(live, client, auth, **form)


def refresh(live, client, refresh_token) -> requests.Response:
    return post_token(live, client, grant_type="refresh_token", refresh_token=refresh_token)


def tokens_for(live, client, login, http=None, scope=OFFLINE) -> dict:
    response = redeem(live, client, *code_for(live, client, login, http=http, scope=scope))
    assert response.status_code == 200, response.text
    return response.json()


def userinfo_status(live, access_token) -> int:
    headers = {"Authorization": f"Bearer {access_token}"}
    return requests.get(f"{live.url}/userinfo", headers=headers, timeout=TIMEOUT).status_code


def assert_oauth_error(response, error, status=400):
    assert response.status_code == status, (response.status_code, response.text)
    assert response.json()["error"] == error, response.text


def assert_error_page(response):
    """RFC 6749 §4.1.2.1: an unproven redirect URI gets an HTML page, never a redirect."""
    assert response.status_code == 400, (response.status_code, response.headers)
    assert "Location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")


def assert_redirected_error(live, response, client, error, state=None) -> dict:
    assert response.headers["Location"].startswith(client.redirect_uri + "?")
    params = callback_params(response)
    assert params["error"] == error, params
    assert params["iss"] == live.url  # RFC 9207
    assert "code" not in params
    if state is not None:
        assert params["state"] == state
    return params


@pytest.fixture
def user(live) -> str:
    return make_user(live)[1]


# --- 1, 2: redirect URI and client validation at /authorize ------------------------------------

BAD_REDIRECTS = {
    "extra_path": "https://rp.example.com/cb/extra",
    "query_added": "https://rp.example.com/cb?next=https://evil.com",
    "trailing_slash": "https://rp.example.com/cb/",
    "host_case": "https://RP.EXAMPLE.COM/cb",
    "path_case": "https://rp.example.com/CB",
    "suffix_domain": "https://rp.example.com.evil.com/cb",
    "userinfo": "https://rp.example.com@evil.com/cb",
    "encoded_slash": "https://rp.example.com%2Fcb",
    "encoded_traversal": "https://rp.example.com/cb%2F..%2F..%2Fevil",
    "encoded_whole": "https%3A%2F%2Frp.example.com%2Fcb",
    "http_scheme": "http://rp.example.com/cb",
}


@pytest.mark.parametrize("variant", BAD_REDIRECTS.values(), ids=BAD_REDIRECTS.keys())
def test_item_01_redirect_uri_variants_get_an_error_page(live, variant):
    """1. redirect_uri variants (extra path, query, trailing slash, case,
    `rp.example.com.evil.com`, `rp@evil.com`, `%2F` encodings, `http://`) → error page, no
    redirect."""
    client = make_client(live, redirect_uris=[RP])
    url = authorize_url(live, client, pkce_pair()[1], redirect_uri=variant)
    assert_error_page(requests.get(url, allow_redirects=False, timeout=TIMEOUT))


@pytest.mark.parametrize("case", ["no_redirect_uri", "unknown_client", "bad_scope", "prompt_none"])
def test_item_02_unverifiable_requests_are_never_redirected(live, case):
    """2. No redirect_uri (client has ≥2), unknown client_id, or bad scope/`prompt=none` with
    unregistered URI → error page, never redirected."""
    client = make_client(live, redirect_uris=[RP, "https://rp.example.com/cb2"])
    evil = "https://evil.example/cb"
    params = {
        "no_redirect_uri": {"redirect_uri": None},
        "unknown_client": {"client_id": "no-such-client", "redirect_uri": RP},
        "bad_scope": {"scope": "admin", "redirect_uri": evil},
        "prompt_none": {"prompt": "none", "redirect_uri": evil},
    }[case]
    url = authorize_url(live, client, pkce_pair()[1], **params)
    assert_error_page(requests.get(url, allow_redirects=False, timeout=TIMEOUT))


# --- 3, 4, 5: authorization codes -------------------------------------------------------------


def test_item_03_code_replay_fails_and_revokes_first_tokens(live, user):
    """3. Code redeemed twice → `invalid_grant`; first access token now rejected at
    /userinfo."""
    client = make_client(live)
    code, verifier = code_for(live, client, user)
    first = redeem(live, client, code, verifier)
    assert first.status_code == 200, first.text
    access_token = first.json()["access_token"]
    assert userinfo_status(live, access_token) == 200
    assert_oauth_error(redeem(live, client, code, verifier), "invalid_grant")
    assert userinfo_status(live, access_token) == 401


def test_item_04_parallel_redemptions_of_one_code_yield_one_token(live, user):
    """4. 20 parallel redemptions of one code → exactly one 200."""
    client = make_client(live)
    code, verifier = code_for(live, client, user)
    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(lambda _: redeem(live, client, code, verifier), range(20)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [400] * 19, statuses
    assert all(r.json()["error"] == "invalid_grant" for r in responses if r.status_code != 200)


@pytest.mark.parametrize("case", ["expired", "other_client", "other_redirect_uri"])
def test_item_05_code_bound_to_ttl_client_and_redirect_uri(live, user, case):
    """5. Code older than TTL (≤10 min; test 60 s) or redeemed by another client / different
    redirect_uri → `invalid_grant`."""
    client = make_client(live, redirect_uris=[RP, "https://rp.example.com/cb2"])
    code, verifier = code_for(live, client, user)
    if case == "expired":
        live.clock.advance(61)
        response = redeem(live, client, code, verifier)
    elif case == "other_client":
        response = redeem(live, make_client(live), code, verifier)
    else:
        response = redeem(live, client, code, verifier, redirect_uri="https://rp.example.com/cb2")
    assert_oauth_error(response, "invalid_grant")


# --- 6, 7, 8: PKCE -------------------------------------------------------------------------------


def test_item_06_no_code_is_issued_without_a_challenge(live, user):
    """6. `code_verifier` sent but no challenge in authz request → rejected (downgrade).

    The downgrade is stopped at its root: the authorization request without a challenge is
    refused, so no code exists that a verifier-less (or any-verifier) redemption could use."""
    public = make_client(live, public=True, redirect_uris=["http://127.0.0.1:7000/cb"])
    url = authorize_url(live, public, None, code_challenge_method=None, state="s6")
    response = sign_in_and_authorize(requests.Session(), live, url, user, PASSWORD)
    assert_redirected_error(live, response, public, "invalid_request", state="s6")


@pytest.mark.parametrize("case", ["plain", "challenge_without_method", "no_challenge"])
def test_item_07_only_s256_pkce_is_accepted(live, user, case):
    """7. `code_challenge_method=plain`, challenge without method, or no challenge from a
    confidential client → `invalid_request`."""
    client = make_client(live)  # confidential, client_secret_basic
    verifier, challenge = pkce_pair()
    params = {
        "plain": {"code_challenge": verifier, "code_challenge_method": "plain"},
        "challenge_without_method": {"code_challenge": challenge, "code_challenge_method": None},
        "no_challenge": {"code_challenge": None, "code_challenge_method": None},
    }[case]
    url = authorize_url(live, client, challenge, state="s7", **params)
    response = sign_in_and_authorize(requests.Session(), live, url, user, PASSWORD)
    assert_redirected_error(live, response, client, "invalid_request", state="s7")


@pytest.mark.parametrize("case", ["wrong_verifier", "verifier_of_42_chars"])
def test_item_08_bad_verifier_is_invalid_grant(live, user, case):
    """8. Wrong verifier or 42-char verifier → `invalid_grant`."""
    client = make_client(live)
    if case == "wrong_verifier":
        code, _ = code_for(live, client, user)
        verifier = pkce_pair()[0]
    else:  # the challenge matches, but RFC 7636 §4.1 wants 43–128 characters
        verifier = secrets.token_urlsafe(40)[:42]
        code, _ = code_for(live, client, user, verifier=verifier)
    assert_oauth_error(redeem(live, client, code, verifier), "invalid_grant")


# --- 9: implicit and password grants -------------------------------------------------------------


@pytest.mark.parametrize("response_type", ["token", "id_token token", "code token"])
def test_item_09_implicit_response_types_are_refused(live, user, response_type):
    """9. `response_type=token`/`id_token token`, `grant_type=password` →
    unsupported/unauthorized (response types here; the grant type below)."""
    client = make_client(live)
    url = authorize_url(live, client, pkce_pair()[1], response_type=response_type, state="s9")
    response = sign_in_and_authorize(requests.Session(), live, url, user, PASSWORD)
    if response.status_code == 400:
        assert_error_page(response)
        return
    location = urlsplit(response.headers["Location"])
    returned = parse_qs(location.query) | parse_qs(location.fragment)
    assert returned["error"] == ["unsupported_response_type"], returned
    assert not {"access_token", "id_token", "code"} & set(returned)


def test_item_09_password_grant_is_unsupported(live):
    """9. `response_type=token`/`id_token token`, `grant_type=password` →
    unsupported/unauthorized."""
    client = make_client(live)
    _, login = make_user(live)
    response = post_token(
        live, client, grant_type="password", username=login, password=PASSWORD, scope="openid"
    )
    assert_oauth_error(response, "unsupported_grant_type")


# --- 10, 11: refresh tokens --------------------------------------------------------------------


def test_item_10_refresh_token_replay_revokes_the_family(live, user):
    """10. Rotated refresh token replayed → `invalid_grant` and the whole token family
    revoked."""
    client = make_client(live)
    first = tokens_for(live, client, user)
    rotated = refresh(live, client, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    newest = rotated.json()
    assert newest["refresh_token"] != first["refresh_token"]
    assert userinfo_status(live, newest["access_token"]) == 200

    assert_oauth_error(refresh(live, client, first["refresh_token"]), "invalid_grant")
    assert_oauth_error(refresh(live, client, newest["refresh_token"]), "invalid_grant")
    assert userinfo_status(live, newest["access_token"]) == 401


# Password change arrives with a later issue; its case joins this test then.
@pytest.mark.parametrize("case", ["absolute_expiry", "logout_confirm", "logout_id_token_hint"])
def test_item_11_refresh_refused_after_expiry_or_logout(make_live, case):
    """11. Refresh after absolute expiry, logout or password change → `invalid_grant`."""
    live = make_live(IDP_REFRESH_TOKEN_TTL="120")
    client = make_client(live)
    _, login = make_user(live)
    browser = requests.Session()
    tokens = tokens_for(live, client, login, http=browser)
    current = tokens["refresh_token"]
    if case == "absolute_expiry":
        live.clock.advance(60)
        rotated = refresh(live, client, current)  # rotation must not extend the lifetime
        assert rotated.status_code == 200, rotated.text
        current = rotated.json()["refresh_token"]
        live.clock.advance(61)
    elif case == "logout_confirm":
        page = browser.get(f"{live.url}/logout", timeout=TIMEOUT)
        done = browser.post(
            f"{live.url}/logout/confirm",
            data={"csrf_token": csrf_of(page.text)},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert done.status_code == 303, done.text
    else:
        done = browser.get(
            f"{live.url}/logout",
            params={"id_token_hint": tokens["id_token"]},
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert done.status_code == 303, done.text
    assert_oauth_error(refresh(live, client, current), "invalid_grant")


# 12. Social callbacks: social login arrives with a later issue; its tests come with it.


# --- 13: framing -------------------------------------------------------------------------------


def _consent_page(live):
    client = make_client(live, first_party=False)
    url = authorize_url(live, client, pkce_pair()[1])
    page = sign_in_and_authorize(
        requests.Session(), live, url, make_user(live)[1], PASSWORD, consent=False
    )
    assert page.status_code == 200 and 'name="decision"' in page.text, page.text[:300]
    return page


PAGES = {
    "authorize_error": lambda live: requests.get(f"{live.url}/authorize", timeout=TIMEOUT),
    "login": lambda live: requests.get(f"{live.url}/login", timeout=TIMEOUT),
    "consent": _consent_page,
    "not_found": lambda live: requests.get(f"{live.url}/no-such-page", timeout=TIMEOUT),
}


@pytest.mark.parametrize("page", PAGES.values(), ids=PAGES.keys())
def test_item_13_pages_cannot_be_framed(live, page):
    """13. /authorize, /login, /consent, error pages → `Content-Security-Policy:
    frame-ancestors 'none'` (+`X-Frame-Options: DENY`)."""
    response = page(live)
    assert response.headers["Content-Type"].startswith("text/html")
    directives = [d.strip() for d in response.headers["Content-Security-Policy"].split(";")]
    assert "frame-ancestors 'none'" in directives
    assert response.headers["X-Frame-Options"] == "DENY"


# --- beyond the numbered items -----------------------------------------------------------------


def test_iss_is_returned_on_success_and_error_responses(live, user):
    """RFC 9207 §2: the issuer identifies itself in every authorization response."""
    client = make_client(live)
    params, _ = authorize(live, client, user)
    assert params["iss"] == live.url and "code" in params
    url = authorize_url(live, client, pkce_pair()[1], prompt="none", state="s-iss")
    response = requests.get(url, allow_redirects=False, timeout=TIMEOUT)  # no session
    assert_redirected_error(live, response, client, "login_required", state="s-iss")


@pytest.mark.parametrize("auth", ["basic", "post"])
def test_wrong_client_secret_is_401_with_challenge(live, user, auth):
    """RFC 6749 §5.2: failed client authentication → 401 `invalid_client` + WWW-Authenticate,
    for client_secret_basic and client_secret_post alike."""
    method = "client_secret_basic" if auth == "basic" else "client_secret_post"
    client = make_client(live, auth_method=method)
    code, verifier = code_for(live, client, user)
    client.secret = "wrong-" + client.secret
    response = redeem(live, client, code, verifier, auth=auth)
    assert_oauth_error(response, "invalid_client", status=401)
    assert response.headers.get("WWW-Authenticate")


def test_token_responses_are_not_cached(live, user):
    """RFC 6749 §5.1/§5.2: token success and error responses carry `Cache-Control:
    no-store`."""
    client = make_client(live)
    code, verifier = code_for(live, client, user)
    issued, replayed = redeem(live, client, code, verifier), redeem(live, client, code, verifier)
    assert (issued.status_code, replayed.status_code) == (200, 400)
    for response in (issued, replayed):
        assert "no-store" in response.headers["Cache-Control"]


def test_confidential_client_cannot_authenticate_with_none(live, user):
    """A confidential client presenting only its client_id (method `none`) → 401."""
    client = make_client(live)
    code, verifier = code_for(live, client, user)
    response = redeem(live, client, code, verifier, auth="none")
    assert_oauth_error(response, "invalid_client", status=401)

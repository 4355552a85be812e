"""Social sign-in over real HTTP with in-process twin providers: sign-up, sign-in, the proof
of an existing account, link and unlink, and the attacks on the round trip. Every test runs
on SQLite + the memory store and on PostgreSQL + Redis (the ``live`` profiles)."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import select

from idp.adapters.social.fake import RecordingSocialProvider
from idp.adapters.sql.models import SocialIdentity, User
from tests.idp.test_consent_prompt import exchange
from tests.idp.test_registration_flow import last_code, post_form
from tests.support import (
    PASSWORD,
    authorize_url,
    callback_params,
    csrf_of,
    follow_local,
    make_client,
    make_user,
    pkce_pair,
)

STATE_REFUSED = "ссылка устарела или открыта в другом браузере"


def social_live(make_live, *names):
    providers = {n: RecordingSocialProvider(n) for n in (names or ("vkid", "google"))}
    return make_live(social_providers=providers), providers


def start(http, live, provider, interaction=None) -> str:
    """Press the button; returns the ``state`` sent to the provider."""
    params = {"interaction": interaction} if interaction else {}
    response = http.get(f"{live.url}/login/social/{provider}", params=params, allow_redirects=False)
    assert response.status_code == 303, response.text[:300]
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    return query["state"][0]


def come_back(http, live, provider, **params):
    return http.get(
        f"{live.url}/login/social/{provider}/callback", params=params, allow_redirects=False
    )


def interaction_of(response) -> str:
    return re.search(r"interaction=([\w\-]+)", response.headers["Location"]).group(1)


def id_token_claims(tokens) -> dict:
    payload = tokens["id_token"].split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def identities(live) -> list[tuple[str, str, str]]:
    from idp.extensions import db

    with live.ctx():
        rows = db.session.scalars(select(SocialIdentity)).all()
        return sorted((r.provider, r.subject, r.user_id) for r in rows)


def link(live, user_id, profile) -> None:
    social = live.services.social
    with live.ctx(), live.services.uow.transaction():
        social.link_in_transaction(user_id, social.flow_payload(profile))


def unlink(http, live, profile, identity_id):
    return http.post(
        f"{live.url}/account/profile/social/{identity_id}/unlink",
        data={"csrf_token": csrf_of(profile.text)},
        allow_redirects=False,
    )


def sign_in_with_password(http, live, login):
    page = http.get(f"{live.url}/login")
    response = http.post(
        f"{live.url}/login",
        data={"csrf_token": csrf_of(page.text), "login": login, "password": PASSWORD},
        allow_redirects=False,
    )
    assert response.status_code == 303


# --- the sign-in page -------------------------------------------------------------------------


def test_buttons_of_enabled_providers_only_in_the_help_pages_order(make_live):
    live, _ = social_live(make_live, "google", "ok", "vkid")
    page = requests.get(f"{live.url}/login")
    assert "Или войдите с помощью соцсетей:" in page.text
    labels = re.findall(r'class="social-button social-(\w+)"[^>]*>([^<]+)</a>', page.text)
    assert labels == [("vkid", "VK"), ("ok", "OK"), ("google", "G")]
    assert "/login/social/yandex" not in page.text and "/login/social/facebook" not in page.text
    english = requests.get(f"{live.url}/login?lang=en")
    assert "Or sign in with a social network:" in english.text


def test_provider_names_read_as_sentences_in_both_languages(make_live):
    """«Данные из %(provider)s…», «%(provider)s привязан…» need a name that fits them (not the
    plural «Одноклассники»), and the English pages say the names in English."""
    live, providers = social_live(make_live, "ok", "yandex")
    russian = requests.get(f"{live.url}/login?lang=ru").text
    assert 'aria-label="Войти через OK"' in russian
    assert 'aria-label="Войти через Яндекс ID"' in russian
    english = requests.get(f"{live.url}/login?lang=en").text
    assert 'aria-label="Sign in with OK"' in english
    assert 'aria-label="Sign in with Yandex ID"' in english
    assert "Одноклассники" not in russian + english and "Яндекс" not in english
    providers["yandex"].person("new", "ya-1", given_name="Анна", family_name="Соколова")
    http = requests.Session()
    http.get(f"{live.url}/login?lang=en")
    come_back(http, live, "yandex", code="new", state=start(http, live, "yandex"))
    form = http.get(f"{live.url}/register").text
    assert "Yandex ID" in form and "Яндекс" not in form


def test_no_social_section_without_enabled_providers(live):
    page = requests.get(f"{live.url}/login")
    assert "соцсетей" not in page.text and "social-button" not in page.text
    response = requests.get(f"{live.url}/login/social/vkid", allow_redirects=False)
    assert response.status_code == 404 and "недоступен" in response.text


def test_round_trip_carries_state_nonce_and_pkce_bound_to_the_provider(make_live):
    live, providers = social_live(make_live)
    http = requests.Session()
    state = start(http, live, "vkid")
    [asked] = providers["vkid"].authorizations
    assert asked["redirect_uri"] == f"{live.url}/login/social/vkid/callback"
    assert len(state) >= 32 and len(asked["nonce"]) >= 32
    assert 43 <= len(asked["code_verifier"]) <= 128
    providers["vkid"].person("c1", "vk-1", given_name="Анна", family_name="Соколова")
    come_back(http, live, "vkid", code="c1", state=state)
    [done] = providers["vkid"].completions
    assert (done["state"], done["nonce"], done["code_verifier"]) == (
        state,
        asked["nonce"],
        asked["code_verifier"],
    )
    assert done["redirect_uri"] == asked["redirect_uri"]


# --- sign-up, then sign-in, from a portal's authorization request ---------------------------------


def test_unknown_identity_signs_up_with_our_own_code_and_lands_at_the_portal(make_live):
    live, providers = social_live(make_live)
    client = make_client(live)
    providers["vkid"].person(
        "new", "vk-100", given_name="Анна", family_name="Соколова", phone="+79995550101"
    )
    http = requests.Session()
    verifier, challenge = pkce_pair()
    login = follow_local(
        http, live, http.get(authorize_url(live, client, challenge), allow_redirects=False)
    )
    uid = re.search(r'name="interaction" value="([^"]+)"', login.text).group(1)
    assert f"/login/social/vkid?interaction={uid}" in login.text
    back = come_back(http, live, "vkid", code="new", state=start(http, live, "vkid", uid))
    assert back.headers["Location"].endswith("/register")
    form = http.get(f"{live.url}/register")
    assert 'value="Соколова"' in form.text and 'value="Анна"' in form.text
    assert 'value="+79995550101"' in form.text and "VK ID" in form.text
    assert identities(live) == []  # nothing exists before our own confirmation
    sent = post_form(
        http,
        live,
        "/register",
        family_name="Соколова",
        given_name="Анна",
        contact="+79995550101",
        region="Пермский край",
        accept="1",
    )
    assert sent.headers["Location"].endswith("/register/confirm")
    code = last_code(live, "+79995550101")
    post_form(http, live, "/register/confirm", code=code)
    assert identities(live) == []
    done = post_form(http, live, "/register/password", skip="1")
    params = callback_params(follow_local(http, live, done))
    claims = id_token_claims(exchange(live, client, params["code"], verifier))
    assert claims["amr"] == ["fed", "vkid"]
    [(provider, subject, user_id)] = identities(live)
    assert (provider, subject, user_id) == ("vkid", "vk-100", claims["sub"])
    with live.ctx():
        user = live.services.users.get(user_id)
        assert user.password_hash is None and user.phone_verified

    # Next time, in another browser: the linked identity signs the same account in.
    again = requests.Session()
    verifier, challenge = pkce_pair()
    login = follow_local(
        again, live, again.get(authorize_url(live, client, challenge), allow_redirects=False)
    )
    uid = re.search(r'name="interaction" value="([^"]+)"', login.text).group(1)
    back = come_back(again, live, "vkid", code="new", state=start(again, live, "vkid", uid))
    params = callback_params(follow_local(again, live, back))
    claims = id_token_claims(exchange(live, client, params["code"], verifier))
    assert claims["sub"] == user_id and claims["amr"] == ["fed", "vkid"]
    profile = again.get(f"{live.url}/account/profile")
    assert "VK ID" in profile.text and "вход через VK ID" in profile.text
    # The account's only way in: unlinking it is refused.
    identity_id = re.search(r"/account/profile/social/(\d+)/unlink", profile.text).group(1)
    refused = unlink(again, live, profile, identity_id)
    assert "social_error=last" in refused.headers["Location"]
    assert len(identities(live)) == 1
    shown = again.get(live.url + refused.headers["Location"].removeprefix(live.url))
    assert "Нельзя отвязать последний способ входа" in shown.text
    # No password to type as «Текущий пароль»: the page says so and, the sign-in being fresh,
    # offers to set one without it (tests/idp/test_passwordless_profile.py for the rest).
    assert 'id="no-password"' in profile.text and "Пароль не задан" in profile.text
    assert "current_password" not in profile.text
    english = again.get(f"{live.url}/account/profile?lang=en")
    assert "No password is set" in english.text and "Set a password" in english.text


# --- attacks on the round trip --------------------------------------------------------------------


def test_callback_without_state_is_refused_before_the_provider_is_asked(make_live):
    live, providers = social_live(make_live)
    http = requests.Session()
    start(http, live, "vkid")
    response = come_back(http, live, "vkid", code="anything")
    assert response.status_code == 400 and STATE_REFUSED in response.text
    assert "Traceback" not in response.text and providers["vkid"].completions == []


def test_state_from_another_browser_is_refused_and_stays_usable_by_its_own(make_live):
    live, providers = social_live(make_live)
    providers["vkid"].person("c", "vk-7", given_name="Анна", family_name="Соколова")
    client = make_client(live)
    victim, attacker = requests.Session(), requests.Session()
    _, challenge = pkce_pair()
    login = follow_local(
        victim, live, victim.get(authorize_url(live, client, challenge), allow_redirects=False)
    )
    uid = re.search(r'name="interaction" value="([^"]+)"', login.text).group(1)
    state = start(victim, live, "vkid", uid)
    start(attacker, live, "vkid")  # the attacker has a session of their own
    response = come_back(attacker, live, "vkid", code="c", state=state)
    assert response.status_code == 400 and STATE_REFUSED in response.text
    assert 'name="interaction"' not in response.text  # nothing of the other round trip
    assert providers["vkid"].completions == []
    assert come_back(victim, live, "vkid", code="c", state=state).status_code == 303


def test_replayed_callback_is_refused(make_live):
    live, providers = social_live(make_live)
    user_id, _ = make_user(live)
    link(live, user_id, providers["vkid"].person("c", "vk-8", given_name="Иван"))
    http = requests.Session()
    state = start(http, live, "vkid")
    first = come_back(http, live, "vkid", code="c", state=state)
    assert first.status_code == 303 and first.headers["Location"].endswith("/account")
    replay = come_back(requests.Session(), live, "vkid", code="c", state=state)
    assert replay.status_code == 400 and STATE_REFUSED in replay.text
    same_browser = come_back(http, live, "vkid", code="c", state=state)
    assert same_browser.status_code == 400
    assert len(providers["vkid"].completions) == 1  # the nonce was spent once


def test_answer_at_another_providers_callback_is_refused(make_live):
    live, providers = social_live(make_live)
    providers["vkid"].person("c", "vk-9")
    providers["google"].person("c", "g-9")
    http = requests.Session()
    state = start(http, live, "vkid")
    response = come_back(http, live, "google", code="c", state=state)
    assert response.status_code == 400 and STATE_REFUSED in response.text
    assert providers["google"].completions == [] and providers["vkid"].completions == []


def test_provider_that_never_answers_ends_with_a_message(make_live):
    live, providers = social_live(make_live)
    providers["google"].error = "unavailable"
    http = requests.Session()
    response = come_back(http, live, "google", code="c", state=start(http, live, "google"))
    assert response.status_code == 503
    assert "Google сейчас не отвечает" in response.text and "Traceback" not in response.text
    assert 'name="password"' in response.text  # still the sign-in page


def test_denied_at_the_provider_keeps_the_portals_request(make_live):
    live, _ = social_live(make_live)
    client = make_client(live)
    http = requests.Session()
    _, challenge = pkce_pair()
    login = follow_local(
        http, live, http.get(authorize_url(live, client, challenge), allow_redirects=False)
    )
    uid = re.search(r'name="interaction" value="([^"]+)"', login.text).group(1)
    state = start(http, live, "vkid", uid)
    response = come_back(http, live, "vkid", error="access_denied", state=state)
    assert "Вы отменили вход через VK ID." in response.text
    # The round trip carried the portal's request: the page goes on with it.
    assert "для входа в «Тестовый портал»" in response.text
    again = re.search(r'name="interaction" value="([^"]+)"', response.text).group(1)
    assert f"/login/social/vkid?interaction={again}" in response.text


# --- an existing account's contact: proof before any link (checklist item 40) -------------------


def test_verified_email_of_an_account_is_not_merged_without_proof(make_live):
    live, providers = social_live(make_live)
    owner_id, login = make_user(live, "anna@example.com")
    providers["google"].person(
        "g", "g-1", given_name="Анна", email="anna@example.com", email_verified=True
    )
    http = requests.Session()
    back = come_back(http, live, "google", code="g", state=start(http, live, "google"))
    assert back.headers["Location"].endswith("/login/social/proof")
    page = http.get(f"{live.url}/login/social/proof")
    assert "У вас уже есть учётная запись" in page.text
    wrong = post_form(http, live, "/login/social/proof", action="password", password="не-тот")
    assert wrong.status_code == 400 and "Неверный пароль." in wrong.text
    assert identities(live) == []
    assert http.get(f"{live.url}/account", allow_redirects=False).status_code != 200
    # Another browser that never proved anything cannot finish this proof.
    assert post_form(
        requests.Session(), live, "/login/social/proof", action="password", password=PASSWORD
    ).status_code in (400, 404)
    done = post_form(http, live, "/login/social/proof", action="password", password=PASSWORD)
    assert done.status_code == 303 and done.headers["Location"].endswith("/account")
    assert identities(live) == [("google", "g-1", owner_id)]


def test_proof_by_a_code_to_the_accounts_phone(make_live):
    live, providers = social_live(make_live)
    owner_id, phone = make_user(live)
    providers["vkid"].person("v", "vk-2", given_name="Иван", phone=phone)
    http = requests.Session()
    back = come_back(http, live, "vkid", code="v", state=start(http, live, "vkid"))
    assert back.headers["Location"].endswith("/login/social/proof")
    sent = post_form(http, live, "/login/social/proof", action="send_code")
    assert sent.status_code == 200 and "Код отправлен" in sent.text
    assert identities(live) == []
    wrong = post_form(http, live, "/login/social/proof", action="code", code="000000")
    assert wrong.status_code == 400
    code = last_code(live, phone)
    done = post_form(http, live, "/login/social/proof", action="code", code=code)
    assert done.status_code == 303
    assert identities(live) == [("vkid", "vk-2", owner_id)]


def test_proof_by_a_link_to_the_accounts_email(make_live):
    live, providers = social_live(make_live)
    owner_id, email = make_user(live, "ivan@example.com")
    providers["google"].person("g", "g-3", email=email, email_verified=True)
    http = requests.Session()
    come_back(http, live, "google", code="g", state=start(http, live, "google"))
    sent = post_form(http, live, "/login/social/proof", action="send_link")
    assert sent.status_code == 200 and "ссылку" in sent.text
    link = last_link_social(live, email)
    other_browser = requests.Session()
    page = other_browser.get(link)  # a GET changes nothing
    assert page.status_code == 200 and identities(live) == []
    done = other_browser.post(link, data={"csrf_token": csrf_of(page.text)}, allow_redirects=False)
    assert done.status_code == 303 and identities(live) == [("google", "g-3", owner_id)]
    third = requests.Session()
    token = csrf_of(third.get(f"{live.url}/login").text)
    assert third.post(link, data={"csrf_token": token}).status_code == 400  # single use


def last_link_social(live, email) -> str:
    from tests.idp.test_registration_flow import outbox

    body = outbox(live, email)[-1].body
    return re.search(r"https?://\S+/login/social/proof/[\w\-]+", body).group(0)


def test_unverified_email_of_an_account_goes_to_ordinary_registration(make_live):
    """No "this e-mail has an account" for an address the provider does not vouch for:
    registration answers as for a free contact and tells the owner instead."""
    live, providers = social_live(make_live)
    make_user(live, "olga@example.com")
    providers["vkid"].person("v", "vk-3", given_name="Ольга", email="olga@example.com")
    http = requests.Session()
    back = come_back(http, live, "vkid", code="v", state=start(http, live, "vkid"))
    assert back.headers["Location"].endswith("/register")
    assert identities(live) == []


# --- «Персональная информация»: link another, unlink --------------------------------------------


def test_link_and_unlink_while_signed_in(make_live):
    live, providers = social_live(make_live)
    owner_id, login = make_user(live)
    providers["google"].person("g", "g-5", given_name="Иван", email="i@example.com")
    http = requests.Session()
    sign_in_with_password(http, live, login)
    profile = http.get(f"{live.url}/account/profile")
    assert "Соцсети не привязаны." in profile.text and "Привязать Google" in profile.text
    started = http.post(
        f"{live.url}/account/profile/social/link",
        data={"csrf_token": csrf_of(profile.text), "provider": "google"},
        allow_redirects=False,
    )
    state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    back = come_back(http, live, "google", code="g", state=state)
    assert "linked=google" in back.headers["Location"]
    assert identities(live) == [("google", "g-5", owner_id)]
    profile = http.get(live.url + back.headers["Location"].removeprefix(live.url))
    assert "Google привязан к учётной записи." in profile.text and "i@example.com" in profile.text
    # Only the networks not linked yet are offered.
    assert "Привязать Google" not in profile.text and "Привязать VK ID" in profile.text
    identity_id = re.search(r"/account/profile/social/(\d+)/unlink", profile.text).group(1)
    done = unlink(http, live, profile, identity_id)
    assert "unlinked=1" in done.headers["Location"] and identities(live) == []


def test_link_without_csrf_or_session_is_refused(make_live):
    live, _ = social_live(make_live)
    http = requests.Session()
    url = f"{live.url}/account/profile/social/link"
    response = http.post(url, data={"provider": "google"}, allow_redirects=False)
    assert response.status_code == 403  # no CSRF token
    response = http.post(
        url,
        data={"csrf_token": csrf_of(http.get(f"{live.url}/login").text), "provider": "google"},
        allow_redirects=False,
    )
    assert response.status_code == 303 and response.headers["Location"].endswith("/login")


def test_identity_of_another_account_is_not_linked_again(make_live):
    live, providers = social_live(make_live)
    first_id, _ = make_user(live)
    _, login = make_user(live)
    link(live, first_id, providers["vkid"].person("v", "vk-6"))
    http = requests.Session()
    sign_in_with_password(http, live, login)
    profile = http.get(f"{live.url}/account/profile")
    started = http.post(
        f"{live.url}/account/profile/social/link",
        data={"csrf_token": csrf_of(profile.text), "provider": "vkid"},
        allow_redirects=False,
    )
    state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    back = come_back(http, live, "vkid", code="v", state=state)
    assert "social_error=taken" in back.headers["Location"]
    assert [i[2] for i in identities(live)] == [first_id]


def test_sign_up_with_a_password_signs_in_with_either(make_live):
    """The password step stays on offer for a social sign-up; the account then has both."""
    live, providers = social_live(make_live)
    providers["google"].person("g", "g-7", given_name="Анна", family_name="Соколова")
    http = requests.Session()
    come_back(http, live, "google", code="g", state=start(http, live, "google"))
    post_form(
        http,
        live,
        "/register",
        family_name="Соколова",
        given_name="Анна",
        contact="+79995550177",
        region="Пермский край",
        accept="1",
    )
    post_form(http, live, "/register/confirm", code=last_code(live, "+79995550177"))
    done = post_form(http, live, "/register/password", password="Зимний-вечер-у-камина")
    assert done.status_code == 303
    from idp.extensions import db

    with live.ctx():
        user = db.session.scalar(select(User).where(User.phone == "+79995550177"))
        assert user.password_hash
    assert identities(live) == [("google", "g-7", user.id)]


@pytest.mark.parametrize("profile", ["embedded"], indirect=True)  # the clock moves the store
def test_the_portals_request_outlives_its_interaction_while_the_flow_lives(make_live):
    live, providers = social_live(make_live)
    client = make_client(live)
    providers["vkid"].person("n", "vk-200", given_name="Анна", family_name="Соколова")
    http = requests.Session()
    verifier, challenge = pkce_pair()
    login = follow_local(
        http, live, http.get(authorize_url(live, client, challenge), allow_redirects=False)
    )
    uid = re.search(r'name="interaction" value="([^"]+)"', login.text).group(1)
    come_back(http, live, "vkid", code="n", state=start(http, live, "vkid", uid))
    fields = {"family_name": "Соколова", "given_name": "Анна", "region": "Пермский край"}
    post_form(http, live, "/register", contact="+79995550202", accept="1", **fields)
    post_form(http, live, "/register/confirm", code=last_code(live, "+79995550202"))
    live.clock.advance(3600)  # the interaction (15 minutes) is gone; the flow (24 h) is not
    done = post_form(http, live, "/register/password", skip="1")
    params = callback_params(follow_local(http, live, done))
    assert id_token_claims(exchange(live, client, params["code"], verifier))["amr"] == [
        "fed",
        "vkid",
    ]


def test_social_sign_up_into_a_legacy_cabinet_links_when_upgraded(make_live):
    """The provider's phone belongs to a legacy cabinet: the sign-up becomes its upgrade, and
    the identity is linked in the upgrade's transaction (then it signs the account in)."""
    from idp.services.captcha import _digest
    from tests.idp.test_cabinet_small_things import _legacy_user

    live, providers = social_live(make_live)
    sub = _legacy_user(live, "+79995556610")
    providers["vkid"].person("l", "vk-legacy", given_name="Анна", phone="+79995556610")
    http = requests.Session()
    back = come_back(http, live, "vkid", code="l", state=start(http, live, "vkid"))
    assert back.headers["Location"].endswith("/register")
    fields = {"family_name": "Старова", "given_name": "Анна", "region": "Пермский край"}
    started = post_form(http, live, "/register", contact="+79995556610", accept="1", **fields)
    assert started.headers["Location"].endswith("/register/legacy")
    page = http.get(f"{live.url}/register/legacy")
    challenge = re.search(r'name="captcha_id" value="([^"]+)"', page.text).group(1)
    with live.ctx():
        live.services.store.set(f"captcha:{challenge}", _digest(challenge, "ABCDE"), 300)
    form = {"csrf_token": csrf_of(page.text), "captcha_id": challenge, "captcha": "ABCDE"}
    wrong = http.post(f"{live.url}/register/legacy", data={**form, "password": "не-тот"})
    assert wrong.status_code == 400 and identities(live) == []
    with live.ctx():
        live.services.store.set(f"captcha:{challenge}", _digest(challenge, "ABCDE"), 300)
    done = http.post(
        f"{live.url}/register/legacy",
        data={**form, "password": "old-cabinet-1"},
        allow_redirects=False,
    )
    assert done.status_code == 303 and "/login" in done.headers["Location"]
    assert identities(live) == [("vkid", "vk-legacy", sub)]
    with live.ctx():
        assert live.services.users.get(sub).status == "active"
    again = requests.Session()
    signed_in = come_back(again, live, "vkid", code="l", state=start(again, live, "vkid"))
    assert signed_in.headers["Location"].endswith("/account")


def test_legacy_upgrade_of_an_identity_linked_meanwhile_changes_nothing(make_live):
    from idp.services.captcha import _digest
    from tests.idp.test_cabinet_small_things import _legacy_user

    live, providers = social_live(make_live)
    sub = _legacy_user(live, "+79995556611")
    other_id, _ = make_user(live)
    profile = providers["vkid"].person("l", "vk-taken", given_name="Анна", phone="+79995556611")
    http = requests.Session()
    come_back(http, live, "vkid", code="l", state=start(http, live, "vkid"))
    fields = {"family_name": "Старова", "given_name": "Анна", "region": "Пермский край"}
    post_form(http, live, "/register", contact="+79995556611", accept="1", **fields)
    page = http.get(f"{live.url}/register/legacy")
    link(live, other_id, profile)  # linked to another account before the upgrade
    challenge = re.search(r'name="captcha_id" value="([^"]+)"', page.text).group(1)
    with live.ctx():
        live.services.store.set(f"captcha:{challenge}", _digest(challenge, "ABCDE"), 300)
    refused = http.post(
        f"{live.url}/register/legacy",
        data={
            "csrf_token": csrf_of(page.text),
            "captcha_id": challenge,
            "captcha": "ABCDE",
            "password": "old-cabinet-1",
        },
    )
    assert refused.status_code == 409 and "Эту соцсеть уже нельзя привязать." in refused.text
    assert identities(live) == [("vkid", "vk-taken", other_id)]
    with live.ctx():
        assert live.services.users.get(sub).status == "legacy"


@pytest.mark.parametrize("profile", ["embedded"], indirect=True)  # the clock moves the store
def test_a_proof_finished_after_the_interaction_expired_still_lands_at_the_portal(make_live):
    """The proof's e-mail link lives 30 minutes, the interaction 15: the flow carries the
    portal's request itself, so the proof finished at minute 20 ends at the portal."""
    live, providers = social_live(make_live)
    client = make_client(live)
    _, email = make_user(live, "vera@example.com")
    providers["google"].person("g", "g-20", email=email, email_verified=True)
    http = requests.Session()
    verifier, challenge = pkce_pair()
    login = follow_local(
        http, live, http.get(authorize_url(live, client, challenge), allow_redirects=False)
    )
    uid = re.search(r'name="interaction" value="([^"]+)"', login.text).group(1)
    come_back(http, live, "google", code="g", state=start(http, live, "google", uid))
    post_form(http, live, "/login/social/proof", action="send_link")
    link = last_link_social(live, email)
    live.clock.advance(20 * 60)  # the interaction is gone, the link and the flow are not
    with live.ctx():
        assert live.services.store.get(f"interaction:{uid}") is None
    page = http.get(link)
    done = http.post(link, data={"csrf_token": csrf_of(page.text)}, allow_redirects=False)
    assert done.status_code == 303
    params = callback_params(follow_local(http, live, done))
    assert id_token_claims(exchange(live, client, params["code"], verifier))["amr"] == [
        "fed",
        "google",
    ]


@pytest.mark.parametrize("profile", ["embedded"], indirect=True)  # the clock moves the store
def test_a_social_sign_up_begun_after_the_interaction_expired_still_lands_at_the_portal(
    make_live,
):
    """The provider's answer waits for the registration form an hour; the interaction does
    not: the pending sign-up carries the portal's request itself."""
    live, providers = social_live(make_live)
    client = make_client(live)
    providers["vkid"].person("n", "vk-201", given_name="Анна", family_name="Соколова")
    http = requests.Session()
    verifier, challenge = pkce_pair()
    login = follow_local(
        http, live, http.get(authorize_url(live, client, challenge), allow_redirects=False)
    )
    uid = re.search(r'name="interaction" value="([^"]+)"', login.text).group(1)
    come_back(http, live, "vkid", code="n", state=start(http, live, "vkid", uid))
    live.clock.advance(20 * 60)  # the interaction (15 minutes) is gone; the pending is not
    fields = {"family_name": "Соколова", "given_name": "Анна", "region": "Пермский край"}
    post_form(http, live, "/register", contact="+79995550203", accept="1", **fields)
    post_form(http, live, "/register/confirm", code=last_code(live, "+79995550203"))
    done = post_form(http, live, "/register/password", skip="1")
    params = callback_params(follow_local(http, live, done))
    assert id_token_claims(exchange(live, client, params["code"], verifier))["amr"] == [
        "fed",
        "vkid",
    ]

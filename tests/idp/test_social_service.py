"""The social service with twin providers, on SQLite + the memory store and on PostgreSQL +
Redis: the round trip's checks, what happens to an identity, the proof flow's transitions and
the unlink rule."""

from __future__ import annotations

import secrets
import socket
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from idp.adapters.social.fake import RecordingSocialProvider
from idp.domain.social import SocialError, SocialProfile
from idp.services.carried_authorization import CarriedAuthorization
from idp.services.social import AlreadyLinked, LastSignInMethod, Linked, ProofNeeded, SignUp
from idp.services.social_proof import (
    IllegalProofTransition,
    SignedIn,
    check_proof_transition,
)
from tests.support import make_user

REDIRECT = "https://idp.example/login/social/vkid/callback"


@pytest.fixture
def social(make_live):
    providers = {n: RecordingSocialProvider(n) for n in ("vkid", "google")}
    live = make_live(social_providers=providers, outbox_worker=False)
    live.providers = providers
    return live


def begin(live, provider="vkid", binding=None, **kw) -> tuple[str, str]:
    binding = binding or secrets.token_urlsafe(32)
    with live.ctx():
        url = live.services.social.begin(provider, binding=binding, redirect_uri=REDIRECT, **kw)
    return parse_qs(urlsplit(url).query)["state"][0], binding


def finish(live, provider, params, binding, **kw):
    with live.ctx():
        return live.services.social.finish(
            provider, params, binding=binding, redirect_uri=REDIRECT, **kw
        )


def link(live, user_id, profile):
    social = live.services.social
    with live.ctx(), live.services.uow.transaction():
        return social.link_in_transaction(user_id, social.flow_payload(profile))


def test_begin_needs_an_enabled_provider_and_a_browser_binding(social):
    with social.ctx():
        with pytest.raises(SocialError) as disabled:
            social.services.social.begin("ok", binding="b" * 43, redirect_uri=REDIRECT)
        with pytest.raises(SocialError) as unbound:
            social.services.social.begin("vkid", binding="", redirect_uri=REDIRECT)
    assert (disabled.value.kind, unbound.value.kind) == ("config", "state")
    with social.ctx():
        assert [b[0] for b in social.services.social.buttons()] == ["vkid", "google"]


@pytest.mark.parametrize(
    ("tamper", "why"),
    [
        (lambda s, b: ({"code": "c"}, b, "vkid"), "missing"),
        (lambda s, b: ({"code": "c", "state": s + "x"}, b, "vkid"), "unknown"),
        (lambda s, b: ({"code": "c", "state": s}, b[:-1] + "x", "vkid"), "foreign browser"),
        (lambda s, b: ({"code": "c", "state": s}, b, "google"), "other provider"),
    ],
)
def test_state_is_refused_before_the_provider_is_asked(social, tamper, why):
    social.providers["vkid"].person("c", "vk-1")
    state, binding = begin(social)
    params, used_binding, provider = tamper(state, binding)
    with pytest.raises(SocialError) as refused:
        finish(social, provider, params, used_binding)
    assert refused.value.kind == "state", why
    assert social.providers["vkid"].completions == [] == social.providers["google"].completions
    # The rightful browser's round trip still works after a refused attempt.
    outcome = finish(social, "vkid", {"code": "c", "state": state}, binding)
    assert isinstance(outcome, SignUp)


def test_a_state_is_used_once(social):
    social.providers["vkid"].person("c", "vk-1")
    state, binding = begin(social)
    finish(social, "vkid", {"code": "c", "state": state}, binding)
    with pytest.raises(SocialError) as replay:
        finish(social, "vkid", {"code": "c", "state": state}, binding)
    assert replay.value.kind == "state" and len(social.providers["vkid"].completions) == 1


def test_a_profile_of_another_provider_is_refused(social):
    social.providers["vkid"].profiles["c"] = SocialProfile(provider="google", subject="g-1")
    state, binding = begin(social)
    with pytest.raises(SocialError) as refused:
        finish(social, "vkid", {"code": "c", "state": state}, binding)
    assert refused.value.kind == "bad_response"


def test_known_identity_signs_in_and_carries_the_portals_request(social):
    user_id, _ = make_user(social)
    link(social, user_id, social.providers["vkid"].person("c", "vk-1"))
    carried = CarriedAuthorization({"client_id": "portal-1", "scope": "openid"}, "portal-1", 7)
    state, binding = begin(social, authorization=carried)
    outcome = finish(social, "vkid", {"code": "c", "state": state}, binding)
    assert isinstance(outcome, SignedIn)
    assert (outcome.user.id, outcome.provider, outcome.authorization) == (user_id, "vkid", carried)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"email": "anna@example.com", "email_verified": True}, ProofNeeded),
        ({"email": "ANNA@example.com", "email_verified": True}, ProofNeeded),
        ({"email": "anna@example.com", "email_verified": False}, SignUp),
        ({"phone": "+79990000077"}, ProofNeeded),
        ({"email": "other@example.com", "email_verified": True}, SignUp),
    ],
)
def test_an_accounts_contact_asks_for_proof_only_when_the_provider_proved_it(
    social, fields, expected
):
    owner, _ = make_user(social, "anna@example.com")
    make_user(social, "+79990000077")
    social.providers["google"].person("g", "g-1", **fields)
    state, binding = begin(social, "google")
    outcome = finish(social, "google", {"code": "g", "state": state}, binding)
    assert isinstance(outcome, expected)
    with social.ctx():
        assert social.services.social.linked(owner) == []  # nothing merged, either way


def test_link_while_signed_in_is_bound_to_the_account_that_started_it(social):
    first, _ = make_user(social)
    second, _ = make_user(social)
    social.providers["vkid"].person("c", "vk-1")
    state, binding = begin(social, link_user=first)
    with pytest.raises(SocialError):
        finish(social, "vkid", {"code": "c", "state": state}, binding, current_user=second)
    state, binding = begin(social, link_user=first)
    outcome = finish(social, "vkid", {"code": "c", "state": state}, binding, current_user=first)
    assert outcome == Linked(first, "vkid")
    with pytest.raises(AlreadyLinked):
        link(social, second, social.providers["vkid"].profiles["c"])


def test_unlink_keeps_a_way_to_sign_in(social):
    with_password, _ = make_user(social)
    link(social, with_password, social.providers["vkid"].person("a", "vk-a"))
    without, _ = make_user(social)
    link(social, without, social.providers["vkid"].person("b", "vk-b"))
    link(social, without, social.providers["google"].person("b", "g-b"))
    service = social.services.social
    with social.ctx():
        from idp.extensions import db

        user = social.services.users.get(with_password)
        service.unlink(user, service.linked(with_password)[0].id)  # the password remains
        assert service.linked(with_password) == []
        user = social.services.users.get(without)
        user.password_hash = None
        db.session.commit()
        first, last = service.linked(without)
        service.unlink(user, first.id)  # another link remains
        with pytest.raises(LastSignInMethod):
            service.unlink(user, last.id)
        assert [i.id for i in service.linked(without)] == [last.id]


def test_proof_transitions():
    check_proof_transition("proof_needed", "code_sent")
    check_proof_transition("code_sent", "proved")
    check_proof_transition("proved", "linked")
    for current, target in [
        ("proof_needed", "proved"),
        ("linked", "linked"),
        ("proved", "code_sent"),
    ]:
        with pytest.raises(IllegalProofTransition):
            check_proof_transition(current, target)


@pytest.fixture
def black_hole():
    """A port whose backlog accepts connections that nobody ever answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def test_a_provider_that_never_answers_ends_on_the_sign_in_page_with_a_message(
    make_live, black_hole
):
    """The real VK ID adapter against a silent host: its timeout, then our message."""
    live = make_live(
        IDP_SOCIAL_VKID_ENABLED="true",
        IDP_SOCIAL_VKID_CLIENT_ID="elk-vkid",
        IDP_SOCIAL_VKID_CLIENT_SECRET="vkid-test-secret",
        IDP_SOCIAL_VKID_BASE_URL=black_hole,
        IDP_SOCIAL_TIMEOUT="1",
    )
    http = requests.Session()
    started = http.get(f"{live.url}/login/social/vkid", allow_redirects=False)
    state = parse_qs(urlsplit(started.headers["Location"]).query)["state"][0]
    answer = http.get(
        f"{live.url}/login/social/vkid/callback",
        params={"code": "c", "state": state, "device_id": "d"},
        timeout=30,
    )
    assert answer.status_code == 503 and "VK ID сейчас не отвечает" in answer.text
    assert 'name="password"' in answer.text

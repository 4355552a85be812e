"""Every provider's error shapes end as the right SocialError kind: the person denied, a
code used twice, the provider answering 500 at each step, and a provider that accepts the
connection and never answers (``unavailable`` within IDP_SOCIAL_TIMEOUT)."""

from __future__ import annotations

import pytest

from idp.domain.social import PROVIDER_NAMES, SocialError
from tests.social.conftest import Round, adapter, person

# Each provider's code exchange and profile (or key) fetch, where a 500 is injected.
STEPS = {
    "vkid": ("/oauth2/auth", "/oauth2/user_info"),
    "mail": ("/token", "/userinfo"),
    "ok": ("/oauth/token.do", "/fb.do"),
    "yandex": ("/token", "/info"),
    "google": ("/token", "/oauth2/v3/certs"),
    "facebook": ("/v24.0/oauth/access_token", "/v24.0/me"),
}


def kind_of(call) -> str:
    with pytest.raises(SocialError) as info:
        call()
    return info.value.kind


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_denied(fakes, tmp_path, name):
    attempt = Round(adapter(fakes, name, tmp_path))
    params = person(attempt.url(), decision="deny")
    assert params["state"] == attempt.state and "code" not in params
    assert kind_of(lambda: attempt.complete(params)) == "denied"


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_a_reused_code_is_invalid_grant(fakes, tmp_path, name):
    attempt = Round(adapter(fakes, name, tmp_path))
    params = person(attempt.url())
    assert attempt.complete(params).subject == "100001"
    assert kind_of(lambda: attempt.complete(params)) == "invalid_grant"


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_an_expired_code_is_invalid_grant(fakes, tmp_path, name):
    fakes.configs[name].code_ttl = -1  # already past its lifetime when it is exchanged
    try:
        attempt = Round(adapter(fakes, name, tmp_path))
        params = person(attempt.url())
    finally:
        fakes.configs[name].code_ttl = 600
    assert kind_of(lambda: attempt.complete(params)) == "invalid_grant"


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_an_invented_code_is_invalid_grant(fakes, tmp_path, name):
    attempt = Round(adapter(fakes, name, tmp_path))
    params = {**person(attempt.url()), "code": "invented-code"}
    assert kind_of(lambda: attempt.complete(params)) == "invalid_grant"


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_a_foreign_state_at_the_callback(fakes, tmp_path, name):
    attempt = Round(adapter(fakes, name, tmp_path))
    params = {**person(attempt.url()), "state": "another-attempts-state"}
    assert kind_of(lambda: attempt.complete(params)) == "state"


@pytest.mark.parametrize("step", [0, 1], ids=["exchange", "profile"])
@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_provider_500_is_unavailable(fakes, tmp_path, name, step):
    attempt = Round(adapter(fakes, name, tmp_path))
    params = person(attempt.url())
    fakes.configs[name].fail[STEPS[name][step]] = 500
    assert kind_of(lambda: attempt.complete(params)) == "unavailable"


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_a_provider_that_never_answers_is_unavailable(fakes, tmp_path, black_hole, name):
    silent = adapter(fakes, name, tmp_path, url=black_hole, IDP_SOCIAL_TIMEOUT="0.3")
    attempt = Round(silent)
    params = {"code": "c", "state": attempt.state, "device_id": "d"}
    if name == "google":  # the discovery document comes first
        assert kind_of(attempt.url) == "unavailable"
    assert kind_of(lambda: attempt.complete(params)) == "unavailable"


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_a_callback_without_code_is_bad_response(fakes, tmp_path, name):
    attempt = Round(adapter(fakes, name, tmp_path))
    assert kind_of(lambda: attempt.complete({"state": attempt.state})) == "bad_response"

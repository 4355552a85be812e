"""The IdP's metrics and request ids, scraped for real after driving traffic over HTTP, on
the embedded storage and on PostgreSQL + Redis. Counters are compared before and after (one
registry per process: other tests count too)."""

from __future__ import annotations

import re
import uuid

import requests

from tests.idp.test_registration_flow import last_code, step1
from tests.metrics_support import in_process_endpoint, present, samples, scrape, value
from tests.support import (
    PASSWORD,
    authorize_url,
    callback_params,
    make_client,
    make_user,
    pkce_pair,
    sign_in_and_authorize,
    submit_login,
)


def _login(live, login, password):
    http = requests.Session()
    return submit_login(http, live, http.get(f"{live.url}/login"), login, password)


def test_sign_ins_lockouts_tokens_and_requests_are_counted(make_live):
    live = make_live(IDP_LOGIN_MAX_FAILURES="3")
    url = in_process_endpoint()
    _sub, login = make_user(live)
    client = make_client(live, scopes=["openid", "offline_access"])
    before = scrape(url)

    assert _login(live, login, "не-тот-пароль").status_code == 200
    verifier, challenge = pkce_pair()
    page = authorize_url(live, client, challenge, scope="openid offline_access")
    code = callback_params(sign_in_and_authorize(requests.Session(), live, page, login, PASSWORD))
    token = requests.post(
        f"{live.url}/token",
        auth=(client.client_id, client.secret),
        data={
            "grant_type": "authorization_code",
            "code": code["code"],
            "redirect_uri": client.redirect_uri,
            "code_verifier": verifier,
        },
        timeout=10,
    ).json()
    refreshed = requests.post(
        f"{live.url}/token",
        auth=(client.client_id, client.secret),
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        timeout=10,
    )
    assert refreshed.status_code == 200
    # Another account: three failures lock it (one lockout), the fourth attempt is refused.
    _other, victim = make_user(live)
    for _ in range(4):
        _login(live, victim, "подбор-пароля")
    after = scrape(url)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("idp_sign_ins_total", method="password", result="failure") == 4
    assert delta("idp_sign_ins_total", method="password", result="success") == 1
    assert delta("idp_sign_ins_total", method="password", result="locked") == 1
    assert delta("idp_lockouts_total") == 1
    assert delta("idp_tokens_issued_total", grant_type="authorization_code") == 1
    assert delta("idp_tokens_issued_total", grant_type="refresh_token") == 1
    ok_token = {"endpoint": "oauth.token", "method": "POST", "status": "200"}
    assert delta("idp_http_requests_total", **ok_token) == 2
    assert delta("idp_http_request_duration_seconds_count", **ok_token) == 2
    assert delta("idp_http_requests_total", endpoint="auth.login", method="POST") == 6
    assert present(after, "idp_db_pool_connections_in_use")
    assert value(after, "idp_db_pool_size") > 0
    # Endpoints are names, never paths: no secret of a path becomes a label.
    endpoints = {labels["endpoint"] for n, labels, _v in samples(after) if "endpoint" in labels}
    assert all("/" not in e for e in endpoints), endpoints


def test_codes_sent_and_the_outbox_lag(live):
    url = in_process_endpoint()
    before = scrape(url)
    phone = "+7999" + str(uuid.uuid4().int)[:7]
    assert step1(requests.Session(), live, phone).status_code == 303
    assert re.fullmatch(r"\d{6}", last_code(live, phone))  # the worker delivered it
    after = scrape(url)
    assert (
        value(after, "idp_codes_sent_total", channel="sms")
        - value(before, "idp_codes_sent_total", channel="sms")
        == 1
    )
    assert (
        value(after, "idp_outbox_deliveries_total", kind="sms", outcome="sent")
        - value(before, "idp_outbox_deliveries_total", kind="sms", outcome="sent")
        == 1
    )

    # With the worker stopped a code waits: the backlog and its age show it.
    live.stop_worker()
    assert step1(requests.Session(), live, "+7999" + str(uuid.uuid4().int)[:7]).status_code == 303
    live.clock.advance(42)
    with live.ctx():
        live.worker.observe_backlog("messages")
        live.worker.observe_backlog("logout")
    lagging = scrape(url)
    assert value(lagging, "idp_outbox_pending", lane="messages") == 1
    assert 42 <= value(lagging, "idp_outbox_oldest_pending_age_seconds", lane="messages") < 60
    assert value(lagging, "idp_outbox_pending", lane="logout") == 0
    assert value(lagging, "idp_outbox_oldest_pending_age_seconds", lane="logout") == 0


def test_request_id_kept_when_sane_replaced_when_not(live):
    sane = "lb-" + uuid.uuid4().hex[:16]
    response = requests.get(f"{live.url}/healthz", headers={"X-Request-Id": sane}, timeout=10)
    assert response.headers["X-Request-Id"] == sane
    for bad in ("two words", "x" * 200, "89991234567", "a@b.ru", "ид-запроса"):
        got = requests.get(
            f"{live.url}/healthz", headers={"X-Request-Id": bad.encode()}, timeout=10
        ).headers["X-Request-Id"]
        assert got != bad and uuid.UUID(got)
    fresh = requests.get(f"{live.url}/no-such-page", timeout=10).headers["X-Request-Id"]
    assert uuid.UUID(fresh)


def test_metrics_port_and_log_format_settings():
    import pytest

    from idp.config import ConfigError, load_settings, log_format_of, metrics_port_of

    assert metrics_port_of({}) is None  # a developer's machine runs several copies
    assert metrics_port_of({"IDP_ENV": "production"}) == 9100
    for off in ("", "0", "off", "OFF"):
        assert metrics_port_of({"IDP_ENV": "production", "IDP_METRICS_PORT": off}) is None
    assert metrics_port_of({"IDP_METRICS_PORT": "9200"}) == 9200
    for bad in ("abc", "-1", "70000"):
        with pytest.raises(ConfigError, match="IDP_METRICS_PORT"):
            metrics_port_of({"IDP_METRICS_PORT": bad})
    assert log_format_of({}) == "text"
    assert log_format_of({"IDP_ENV": "production"}) == "json"
    assert log_format_of({"IDP_ENV": "production", "IDP_LOG_FORMAT": "text"}) == "text"
    with pytest.raises(ConfigError, match="IDP_LOG_FORMAT"):
        load_settings({"IDP_LOG_FORMAT": "xml", "IDP_SECRET_KEY": "x" * 40})


def test_linking_metrics_port_and_log_format_settings(tmp_path):
    import pytest

    from linking_service.config import ConfigError, load_settings

    base = {"LINKING_VAR_DIR": str(tmp_path), "LINKING_SECRET_KEY": "s" * 32}
    dev = load_settings(base)
    assert dev.metrics_port is None and dev.log_format == "text"
    chosen = load_settings({**base, "LINKING_METRICS_PORT": "9301", "LINKING_LOG_FORMAT": "json"})
    assert chosen.metrics_port == 9301 and chosen.log_format == "json"
    assert load_settings({**base, "LINKING_METRICS_PORT": "off"}).metrics_port is None
    for name, bad in (("LINKING_METRICS_PORT", "x"), ("LINKING_LOG_FORMAT", "xml")):
        with pytest.raises(ConfigError, match=name):
            load_settings({**base, name: bad})


def test_social_sign_ins_are_counted_by_provider(make_live):
    """A known identity signing in is a success of its provider; a provider's error and a
    refused round trip are failures; a sign-up is no sign-in yet."""
    from idp.adapters.social.fake import RecordingSocialProvider
    from tests.idp.test_social_flows import come_back, link, start

    providers = {n: RecordingSocialProvider(n) for n in ("vkid", "google")}
    live = make_live(social_providers=providers)
    url = in_process_endpoint()
    user_id, _ = make_user(live)
    link(live, user_id, providers["vkid"].person("known", "vk-metrics-1"))
    providers["vkid"].person("new", "vk-metrics-2")
    before = scrape(url)

    http = requests.Session()
    signed_in = come_back(http, live, "vkid", code="known", state=start(http, live, "vkid"))
    assert signed_in.headers["Location"].endswith("/account")
    other = requests.Session()
    sign_up = come_back(other, live, "vkid", code="new", state=start(other, live, "vkid"))
    assert sign_up.headers["Location"].endswith("/register")
    replayed = come_back(other, live, "vkid", code="new", state="not-a-state")
    assert replayed.status_code == 400
    providers["google"].error = "unavailable"
    down = come_back(other, live, "google", code="c", state=start(other, live, "google"))
    assert down.status_code == 503
    assert come_back(other, live, "nosuch", code="c", state="x").status_code == 400
    after = scrape(url)

    def delta(**labels):
        return value(after, "idp_sign_ins_total", **labels) - value(
            before, "idp_sign_ins_total", **labels
        )

    assert delta(method="vkid", result="success") == 1
    assert delta(method="vkid", result="failure") == 1
    assert delta(method="google", result="failure") == 1
    assert delta(method="google", result="success") == 0
    assert delta(method="nosuch", result="failure") == 0

"""The portals' settings: defaults that match the clients ``idp demo`` registers, and clear
refusals of bad values."""

from __future__ import annotations

import pytest

from demo_portals.config import ConfigError, load_settings
from idp.demo import DEMO_PORTALS, ensure_demo, portal_urls


def test_defaults_are_make_run():
    shop, tv = load_settings("shop", {}), load_settings("tv", {})
    assert (shop.port, tv.port) == (8081, 8082)
    assert shop.redirect_uri == "http://127.0.0.1:8081/callback"
    assert shop.backchannel_logout_uri == "http://127.0.0.1:8081/backchannel-logout"
    assert (shop.issuer, shop.linking_target) == ("http://127.0.0.1:8000", "127.0.0.1:50051")
    assert shop.peer_url == tv.base_url and tv.peer_url == shop.base_url
    assert shop.cookie_name != tv.cookie_name


def test_environment_overrides():
    env = {
        "PORTAL_ISSUER": "https://id.example.ru/",
        "PORTAL_TV_PORT": "9002",
        "PORTAL_TV_CLIENT_ID": "tv-prod",
        "PORTAL_TV_CLIENT_SECRET": "a-long-enough-secret",
    }
    tv, shop = load_settings("tv", env), load_settings("shop", env)
    assert tv.issuer == "https://id.example.ru"
    assert (tv.base_url, tv.client_id) == ("http://127.0.0.1:9002", "tv-prod")
    assert shop.peer_url == "http://127.0.0.1:9002"


@pytest.mark.parametrize(
    ("key", "env", "message"),
    [
        ("radio", {}, "unknown portal"),
        ("shop", {"PORTAL_SHOP_PORT": "eighty"}, "PORTAL_SHOP_PORT"),
        ("shop", {"PORTAL_ISSUER": "id.example.ru"}, "PORTAL_ISSUER"),
        ("tv", {"PORTAL_TV_CLIENT_SECRET": "short"}, "PORTAL_TV_CLIENT_SECRET"),
        ("tv", {"PORTAL_LINKING_TARGET": "nowhere"}, "PORTAL_LINKING_TARGET"),
    ],
)
def test_bad_values_are_refused_clearly(key, env, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(key, env)


@pytest.mark.parametrize("profile", ["embedded"], indirect=True)
def test_idp_demo_registers_the_portals_as_they_expect(live):
    with live.ctx():
        ensure_demo(live.app)
        ensure_demo(live.app)  # idempotent
        clients = live.services.clients
        for key in ("shop", "tv"):
            portal = load_settings(key, {})
            client = clients.get(portal.client_id)
            assert client.name == portal.title
            assert client.redirect_uris == [portal.redirect_uri]
            assert client.post_logout_redirect_uris == [portal.post_logout_redirect_uri]
            assert client.backchannel_logout_uri == portal.backchannel_logout_uri
            assert "linking" in client.scopes and client.first_party
            assert clients.check_secret(client, portal.client_secret)
    assert len(DEMO_PORTALS) == 2


@pytest.mark.parametrize("profile", ["embedded"], indirect=True)
def test_idp_demo_registers_the_portals_where_make_run_serves_them(live):
    """`make run SHOP_PORT=… TV_PORT=…`: «Войти через ЕЛК» must not end at «redirect_uri is
    not registered»; a later run on other ports registers them again."""
    with live.ctx():
        clients = live.services.clients
        for shop, tv in ((18081, 18082), (28081, 28082)):
            urls = portal_urls(f"http://127.0.0.1:{shop}", f"http://127.0.0.1:{tv}/")
            printed = ensure_demo(live.app, urls)
            for key, port in (("shop", shop), ("tv", tv)):
                env = {f"PORTAL_{key.upper()}_PORT": str(port)}
                portal = load_settings(key, env)
                client = clients.get(portal.client_id)
                assert client.redirect_uris == [portal.redirect_uri]
                assert client.post_logout_redirect_uris == [portal.post_logout_redirect_uri]
                assert client.backchannel_logout_uri == portal.backchannel_logout_uri
                assert clients.check_secret(client, portal.client_secret)
                assert f"http://127.0.0.1:{port}/ (client_id={portal.client_id})" in printed

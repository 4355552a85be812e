"""The six fakes as real HTTP servers on free ports (once per session), a socket that accepts
and never answers, and the person's part of a round trip (the fake's page, driven over HTTP).
"""

from __future__ import annotations

import secrets
import socket
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from idp.adapters.social import build_social_providers
from idp.config import load_settings
from social_fakes import server

REDIRECT = "http://127.0.0.1:9/social/{name}/callback"

# The roles of each provider's hosts (idp.config.SOCIAL_URLS) all point at its one fake.
ROLES = {
    "vkid": ("base",),
    "mail": ("base",),
    "ok": ("connect", "api"),
    "yandex": ("oauth", "login"),
    "google": ("discovery",),
    "facebook": ("www", "graph"),
}


@pytest.fixture(scope="session")
def fakes():
    running = server.start(server.default_configs([REDIRECT]))
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def healthy_fakes(request):
    """Injected failures and overrides never outlive the test that injected them."""
    yield
    if "fakes" in request.fixturenames:
        for config in request.getfixturevalue("fakes").configs.values():
            config.fail.clear()
            config.override.clear()
            config.id_token_claims.clear()


@pytest.fixture
def black_hole():
    """A TCP port whose listen backlog accepts connections that nobody ever answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def fake_env(fakes, name: str, *, url: str | None = None, **extra: str) -> dict:
    """IDP_SOCIAL_<NAME>_* naming the fake (or ``url``) and its test credentials."""
    config = fakes.configs[name]
    prefix = f"IDP_SOCIAL_{name.upper()}_"
    env = {
        prefix + "ENABLED": "true",
        prefix + "CLIENT_ID": config.client_id,
        prefix + "CLIENT_SECRET": config.client_secret,
        prefix + "APPLICATION_KEY": config.application_key,
    }
    base = url or fakes.urls[name]
    for role in ROLES[name]:
        env[f"{prefix}{role.upper()}_URL"] = (
            f"{base}/.well-known/openid-configuration" if role == "discovery" else base
        )
    env.update(extra)
    return env


def adapter(fakes, name: str, tmp_path, *, url: str | None = None, **extra: str):
    env = {"IDP_VAR_DIR": str(tmp_path), **fake_env(fakes, name, url=url, **extra)}
    return build_social_providers(load_settings(env))[name]


def redirect_uri(name: str) -> str:
    return REDIRECT.replace("{name}", name)


class Round:
    """One sign-in attempt's secrets, as the IdP's social service would keep them."""

    def __init__(self, provider) -> None:
        self.provider = provider
        self.state = secrets.token_urlsafe(32)
        self.nonce = secrets.token_urlsafe(32)
        self.code_verifier = secrets.token_urlsafe(48)
        self.redirect_uri = redirect_uri(provider.name)

    def url(self) -> str:
        return self.provider.authorization_url(
            redirect_uri=self.redirect_uri,
            state=self.state,
            nonce=self.nonce,
            code_verifier=self.code_verifier,
        )

    def complete(self, params: dict, **overrides):
        kwargs = {
            "redirect_uri": self.redirect_uri,
            "state": self.state,
            "nonce": self.nonce,
            "code_verifier": self.code_verifier,
        }
        kwargs.update(overrides)
        return self.provider.complete(params, **kwargs)


def person(url: str, identity: str = "ivan", decision: str = "allow", **typed: str) -> dict:
    """What the person does at the fake: opens its page, picks (or types) who they are or
    denies; returns the query the provider redirects the browser back with."""
    page = requests.get(url, timeout=5)
    assert page.status_code == 200, page.text
    assert "Разрешить" in page.text and "Отказать" in page.text
    form = {"identity": identity, "decision": decision, **typed}
    answer = requests.post(url, data=form, allow_redirects=False, timeout=5)
    assert answer.status_code in (302, 303), answer.text
    location = urlsplit(answer.headers["Location"])
    return dict(parse_qsl(location.query))


def location_of(url: str, **form: str) -> str:
    answer = requests.post(url, data=form, allow_redirects=False, timeout=5)
    return answer.headers.get("Location", "")

"""Settings of a demo portal, read from ``PORTAL_*`` environment variables.

Shared by both portals: ``PORTAL_ISSUER`` (the IdP), ``PORTAL_LINKING_TARGET`` (the linking
service, host:port) and ``PORTAL_RESOURCE`` (the linking service's resource indicator, RFC 8707).
Per portal, with ``<KEY>`` = ``SHOP`` or ``TV``: ``PORTAL_<KEY>_HOST``, ``PORTAL_<KEY>_PORT``,
``PORTAL_<KEY>_BASE_URL``, ``PORTAL_<KEY>_CLIENT_ID``, ``PORTAL_<KEY>_CLIENT_SECRET`` and
``PORTAL_<KEY>_SECRET_KEY``. The defaults match ``make run`` and the clients ``idp demo``
registers; they are demo values, not secrets.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

LINKING_RESOURCE = "urn:elk:linking-service"


@dataclass(frozen=True)
class Preset:
    key: str
    title: str
    tagline: str
    port: int
    client_id: str
    client_secret: str


PRESETS: dict[str, Preset] = {
    "shop": Preset(
        "shop",
        "Интернет-магазин",
        "Роутеры, приставки и умный дом с доставкой",
        8081,
        "demo-shop",
        "demo-shop-secret-change-me",
    ),
    "tv": Preset(
        "tv",
        "Домашнее ТВ",
        "Более 200 каналов и онлайн-кинотеатр",
        8082,
        "demo-tv",
        "demo-tv-secret-change-me",
    ),
}


class ConfigError(ValueError):
    """A setting has a value the portal cannot start with."""


@dataclass(frozen=True)
class PortalSettings:
    key: str
    title: str
    tagline: str
    host: str
    port: int
    base_url: str
    client_id: str
    client_secret: str
    secret_key: str
    issuer: str
    linking_target: str
    resource: str
    peer_title: str
    peer_url: str

    @property
    def redirect_uri(self) -> str:
        return f"{self.base_url}/callback"

    @property
    def post_logout_redirect_uri(self) -> str:
        return f"{self.base_url}/"

    @property
    def backchannel_logout_uri(self) -> str:
        return f"{self.base_url}/backchannel-logout"

    @property
    def cookie_name(self) -> str:
        # Cookies ignore ports: both portals on 127.0.0.1 need cookies of their own names.
        return f"demo_{self.key}_session"

    def with_(self, **changes) -> PortalSettings:
        return replace(self, **changes)


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, default).rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{name} must be an absolute http(s) URL, got {value!r}")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, str(default))
    try:
        port = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a port number, got {raw!r}") from None
    if not 0 <= port <= 65535:
        raise ConfigError(f"{name} must be a port number, got {raw!r}")
    return port


def _base(env: Mapping[str, str], preset: Preset) -> tuple[str, int, str]:
    prefix = f"PORTAL_{preset.key.upper()}_"
    host = env.get(prefix + "HOST", "127.0.0.1")
    port = _port(env, prefix + "PORT", preset.port)
    return host, port, _url(env, prefix + "BASE_URL", f"http://{host}:{port}")


def load_settings(key: str, env: Mapping[str, str]) -> PortalSettings:
    """The settings of portal ``key`` («shop» or «tv»), validated with a clear message."""
    if key not in PRESETS:
        raise ConfigError(f"unknown portal {key!r} (choose one of {', '.join(PRESETS)})")
    preset = PRESETS[key]
    prefix = f"PORTAL_{key.upper()}_"
    host, port, base_url = _base(env, preset)
    peer = next(p for p in PRESETS.values() if p.key != key)
    secret = env.get(prefix + "CLIENT_SECRET", preset.client_secret)
    if len(secret) < 16:
        raise ConfigError(f"{prefix}CLIENT_SECRET needs at least 16 characters")
    target = env.get("PORTAL_LINKING_TARGET", "127.0.0.1:50051")
    if ":" not in target:
        raise ConfigError(f"PORTAL_LINKING_TARGET must be host:port, got {target!r}")
    return PortalSettings(
        key=key,
        title=preset.title,
        tagline=preset.tagline,
        host=host,
        port=port,
        base_url=base_url,
        client_id=env.get(prefix + "CLIENT_ID", preset.client_id),
        client_secret=secret,
        # Sessions live in the process's memory anyway, so a random key loses nothing.
        secret_key=env.get(prefix + "SECRET_KEY") or secrets.token_urlsafe(32),
        issuer=_url(env, "PORTAL_ISSUER", "http://127.0.0.1:8000"),
        linking_target=target,
        resource=env.get("PORTAL_RESOURCE", LINKING_RESOURCE),
        peer_title=peer.title,
        peer_url=_base(env, peer)[2],
    )


# Every variable load_settings reads, for either portal (tests/deploy/test_settings_names.py).
ENV_VARS: tuple[str, ...] = ("PORTAL_ISSUER", "PORTAL_LINKING_TARGET", "PORTAL_RESOURCE") + tuple(
    f"PORTAL_{key.upper()}_{name}"
    for key in PRESETS
    for name in ("HOST", "PORT", "BASE_URL", "CLIENT_ID", "CLIENT_SECRET", "SECRET_KEY")
)

"""Typed settings of the linking service from ``LINKING_*`` variables, validated at start.

``LINKING_ENV=production`` refuses what is only fit for a developer's machine: an ``http://``
issuer, SQLite, server reflection unless asked for, plaintext gRPC unless TLS is configured
(``LINKING_TLS_CERT`` / ``LINKING_TLS_KEY``, with ``LINKING_TLS_CLIENT_CA`` for mutual TLS) or
plaintext is explicitly allowed behind a mesh that encrypts (``LINKING_ALLOW_PLAINTEXT``), and
a missing ``LINKING_SECRET_KEY``. Secrets never appear in the settings' repr.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


ENVIRONMENTS = ("development", "production")


@dataclass(frozen=True)
class LinkingSettings:
    # May carry a database password: kept out of the repr, like every secret here.
    database_url: str = field(repr=False)
    secret_key: str = field(default="", repr=False)
    env: str = "development"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_client_ca: Path | None = None
    allow_plaintext: bool = True
    listen: str = "127.0.0.1:50051"
    idp_issuer: str = "http://127.0.0.1:8000"
    audience: str = "urn:elk:linking-service"
    allowed_algs: tuple[str, ...] = ("ES256", "RS256")
    jwks_cache_ttl: int = 300
    jwks_refresh_interval: int = 30
    idp_timeout: float = 3.0
    reflection: bool = True
    max_message_bytes: int = 4 * 1024 * 1024
    workers: int = 16
    # RPCs accepted at once (running or queued for a worker); beyond: RESOURCE_EXHAUSTED.
    max_concurrent_rpcs: int = 64
    # Seconds between database probes; the health status is NOT_SERVING while one fails.
    db_probe_interval: float = 5.0
    flow_ttl: int = 15 * 60
    login_max_failures: int = 5
    login_window: int = 15 * 60
    identity_max_failures: int = 20
    identity_window: int = 3600
    identity_max_flows: int = 30
    shutdown_grace: float = 10.0
    events_poll_interval: float = 0.5
    # Prometheus exposition on a port of its own (None: off). Log lines: "json" or "text".
    metrics_port: int | None = None
    log_format: str = "text"

    def with_(self, **changes) -> LinkingSettings:
        return replace(self, **changes)


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _dev_secret(var_dir: Path) -> str:
    """A development secret kept in ``var/linking_secret_key`` so every process agrees."""
    path = var_dir / "linking_secret_key"
    var_dir.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def _tls_file(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "")
    if not raw:
        return None
    path = Path(raw)
    if not path.is_file():
        raise ConfigError(f"{name}: no such file {raw!r}")
    return path


def _metrics_port(env: Mapping[str, str], production: bool) -> int | None:
    """LINKING_METRICS_PORT: unset → 9101 in production, off in development; empty, ``0``
    or ``off`` → off; else a port number."""
    raw = env.get("LINKING_METRICS_PORT")
    if raw is None:
        return 9101 if production else None
    if raw.strip().lower() in ("", "0", "off"):
        return None
    port = _int(env, "LINKING_METRICS_PORT", 9101)
    if port > 65535:
        raise ConfigError(f"LINKING_METRICS_PORT must be a port number, got {port}")
    return port


def _log_format(env: Mapping[str, str], production: bool) -> str:
    value = env.get("LINKING_LOG_FORMAT") or ("json" if production else "text")
    if value not in ("json", "text"):
        raise ConfigError(f"LINKING_LOG_FORMAT must be json or text, got {value!r}")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> LinkingSettings:
    env = dict(os.environ if env is None else env)
    mode = env.get("LINKING_ENV", "development")
    if mode not in ENVIRONMENTS:
        raise ConfigError(f"LINKING_ENV must be one of {', '.join(ENVIRONMENTS)}, got {mode!r}")
    production = mode == "production"
    var_dir = Path(env.get("LINKING_VAR_DIR", env.get("IDP_VAR_DIR", "var"))).resolve()
    url = env.get("LINKING_DATABASE_URL", "")
    if not url:
        if production:
            raise ConfigError("LINKING_DATABASE_URL must be set in production (PostgreSQL)")
        var_dir.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{var_dir / 'linking.sqlite3'}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
    if not url.startswith(("sqlite:///", "postgresql+psycopg://")):
        raise ConfigError("LINKING_DATABASE_URL must be a sqlite:/// or postgresql:// URL")
    if production and not url.startswith("postgresql"):
        raise ConfigError("LINKING_DATABASE_URL must be PostgreSQL in production, not SQLite")
    listen = env.get("LINKING_LISTEN", "127.0.0.1:50051")
    if ":" not in listen:
        raise ConfigError(f"LINKING_LISTEN must be host:port, got {listen!r}")
    issuer = env.get("LINKING_IDP_ISSUER", "http://127.0.0.1:8000").rstrip("/")
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"LINKING_IDP_ISSUER must be an http(s) URL, got {issuer!r}")
    if production and parts.scheme != "https":
        raise ConfigError("LINKING_IDP_ISSUER must use https in production")
    secret = env.get("LINKING_SECRET_KEY", "")
    if production and len(secret) < 32:
        raise ConfigError("LINKING_SECRET_KEY must be set to at least 32 characters in production")
    if not secret:
        secret = _dev_secret(var_dir)
    elif len(secret) < 16:
        raise ConfigError("LINKING_SECRET_KEY must be at least 16 characters")
    cert, key = _tls_file(env, "LINKING_TLS_CERT"), _tls_file(env, "LINKING_TLS_KEY")
    client_ca = _tls_file(env, "LINKING_TLS_CLIENT_CA")
    if (cert is None) != (key is None):
        raise ConfigError("LINKING_TLS_CERT and LINKING_TLS_KEY go together")
    if client_ca is not None and cert is None:
        raise ConfigError("LINKING_TLS_CLIENT_CA needs LINKING_TLS_CERT and LINKING_TLS_KEY")
    allow_plaintext = _bool(env, "LINKING_ALLOW_PLAINTEXT", not production)
    if cert is None and not allow_plaintext:
        raise ConfigError(
            "production serves gRPC over TLS: set LINKING_TLS_CERT and LINKING_TLS_KEY, or "
            "LINKING_ALLOW_PLAINTEXT=true behind a mesh that encrypts"
        )
    algs = tuple(a for a in env.get("LINKING_ALLOWED_ALGS", "ES256,RS256").split(",") if a)
    for alg in algs:
        if alg not in ("ES256", "RS256", "PS256", "EdDSA"):
            raise ConfigError(f"LINKING_ALLOWED_ALGS: {alg!r} is not an asymmetric JWS algorithm")
    if not algs:
        raise ConfigError("LINKING_ALLOWED_ALGS must name at least one algorithm")
    workers = _int(env, "LINKING_WORKERS", 16)
    max_rpcs = _int(env, "LINKING_MAX_CONCURRENT_RPCS", 4 * workers)
    if max_rpcs < workers:
        raise ConfigError(
            f"LINKING_MAX_CONCURRENT_RPCS ({max_rpcs}) must be at least LINKING_WORKERS ({workers})"
        )
    return LinkingSettings(
        metrics_port=_metrics_port(env, production),
        log_format=_log_format(env, production),
        database_url=url,
        secret_key=secret,
        env=mode,
        tls_cert=cert,
        tls_key=key,
        tls_client_ca=client_ca,
        allow_plaintext=allow_plaintext,
        listen=listen,
        idp_issuer=issuer,
        audience=env.get("LINKING_AUDIENCE", "urn:elk:linking-service"),
        allowed_algs=algs,
        jwks_cache_ttl=_int(env, "LINKING_JWKS_CACHE_TTL", 300),
        jwks_refresh_interval=_int(env, "LINKING_JWKS_REFRESH_INTERVAL", 30),
        reflection=_bool(env, "LINKING_REFLECTION", not production),
        max_message_bytes=_int(env, "LINKING_MAX_MESSAGE_BYTES", 4 * 1024 * 1024, 1024),
        workers=workers,
        max_concurrent_rpcs=max_rpcs,
        db_probe_interval=_int(env, "LINKING_DB_PROBE_INTERVAL", 5),
        flow_ttl=_int(env, "LINKING_FLOW_TTL", 15 * 60),
        login_max_failures=_int(env, "LINKING_LOGIN_MAX_FAILURES", 5),
        identity_max_failures=_int(env, "LINKING_IDENTITY_MAX_FAILURES", 20),
        identity_max_flows=_int(env, "LINKING_IDENTITY_MAX_FLOWS", 30),
        shutdown_grace=_int(env, "LINKING_SHUTDOWN_GRACE", 10, minimum=0),
    )


# Every variable load_settings reads (IDP_VAR_DIR when LINKING_VAR_DIR is unset): the deployment
# files and README's operations table are checked against it (tests/deploy/test_settings_names.py).
ENV_VARS: tuple[str, ...] = (
    "IDP_VAR_DIR",
    "LINKING_ALLOWED_ALGS",
    "LINKING_ALLOW_PLAINTEXT",
    "LINKING_AUDIENCE",
    "LINKING_DATABASE_URL",
    "LINKING_DB_PROBE_INTERVAL",
    "LINKING_ENV",
    "LINKING_FLOW_TTL",
    "LINKING_IDENTITY_MAX_FAILURES",
    "LINKING_IDENTITY_MAX_FLOWS",
    "LINKING_IDP_ISSUER",
    "LINKING_JWKS_CACHE_TTL",
    "LINKING_JWKS_REFRESH_INTERVAL",
    "LINKING_LISTEN",
    "LINKING_LOGIN_MAX_FAILURES",
    "LINKING_LOG_FORMAT",
    "LINKING_MAX_CONCURRENT_RPCS",
    "LINKING_MAX_MESSAGE_BYTES",
    "LINKING_METRICS_PORT",
    "LINKING_REFLECTION",
    "LINKING_SECRET_KEY",
    "LINKING_SHUTDOWN_GRACE",
    "LINKING_TLS_CERT",
    "LINKING_TLS_CLIENT_CA",
    "LINKING_TLS_KEY",
    "LINKING_VAR_DIR",
    "LINKING_WORKERS",
)

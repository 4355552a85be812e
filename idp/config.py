"""Typed settings of the identity provider, read from ``IDP_*`` environment variables.

Every value is validated once, at start, with a message that names the variable; a bad
value stops the process instead of running half-configured. Two modes exist:

* ``development`` (the default): embedded SQLite under ``var/``, the in-process store, a
  secret key generated into ``var/secret_key``, an ``http://`` issuer allowed only on a
  loopback address.
* ``production``: an ``https://`` issuer, an explicit secret key, PostgreSQL and Redis are
  required (many identical replicas share nothing but those).
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from urllib.parse import urlsplit

ENVIRONMENTS = ("development", "test", "production")
STANDARD_SCOPES = ("openid", "profile", "email", "phone", "offline_access")
LINKING_SCOPES = ("linking", "linking:auto", "linking:read")
LINKING_RESOURCE = "urn:elk:linking-service"


# Never printed: a repr reaches logs, tracebacks and debuggers.
SECRET_FIELDS = frozenset(
    {"secret_key", "sms_gateway_password", "sms_gateway_token", "smtp_password"}
)
# The same for each social provider's settings (SocialProviderSettings).
SOCIAL_SECRET_FIELDS = frozenset({"client_secret"})
URL_FIELDS = frozenset({"database_url", "redis_url", "sms_gateway_url"})


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


_SECRET_QUERY = re.compile(r"([?&](?:[\w.-]*(?:pass|secret|token|key)[\w.-]*)=)[^&#]*", re.I)


def mask_url(url: str) -> str:
    """A URL without its password (``postgresql://u:***@db/idp``), including a DSN query's
    ``password=`` (libpq accepts it there too)."""
    try:
        password = urlsplit(url).password
    except ValueError:
        return "***"
    if password is not None:
        head, _, rest = url.partition("://")
        userinfo, _, host = rest.rpartition("@")
        url = f"{head}://{userinfo.partition(':')[0]}:***@{host}"
    return _SECRET_QUERY.sub(r"\1***", url)


@dataclass(frozen=True)
class SocialProviderSettings:
    """One social provider's ``IDP_SOCIAL_<PROVIDER>_*`` settings (``idp.adapters.social``).

    ``urls`` holds the provider's hosts by role (``base``, ``api``, ``discovery``…, see
    :data:`SOCIAL_URLS`): pointing them at a local fake or at the real provider is the only
    difference between the two.
    """

    name: str
    enabled: bool = False
    client_id: str = ""
    client_secret: str = ""
    application_key: str = ""  # OK's public key, the third credential
    mode: str = ""  # Mail: "oauth" (OAuth Mail) or "vkid" (Mail through VK ID)
    api_version: str = ""  # Facebook's Graph API version, e.g. "v24.0"
    urls: tuple[tuple[str, str], ...] = ()

    def url(self, role: str) -> str:
        return dict(self.urls)[role]

    def __repr__(self) -> str:
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in SOCIAL_SECRET_FIELDS and value:
                value = "***"
            shown.append(f"{item.name}={value!r}")
        return f"SocialProviderSettings({', '.join(shown)})"

    __str__ = __repr__


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    issuer: str = "http://127.0.0.1:8000"
    secret_key: str = ""
    database_url: str = ""
    redis_url: str | None = None
    redis_prefix: str = "idp:"
    var_dir: Path = Path("var")
    # Lifetimes, seconds.
    code_ttl: int = 60
    access_token_ttl: int = 600
    id_token_ttl: int = 600
    refresh_token_ttl: int = 30 * 24 * 3600
    session_ttl: int = 12 * 3600
    remember_me_ttl: int = 30 * 24 * 3600
    interaction_ttl: int = 15 * 60
    # Scopes a client may be registered for beyond the standard OpenID ones.
    extra_scopes: tuple[str, ...] = ()
    # RFC 8707 resource indicators a client may ask an access token for.
    resources: tuple[str, ...] = ()
    default_signing_alg: str = "ES256"
    # Sign-in throttling.
    login_max_failures: int = 10
    login_lockout_base: int = 30
    login_lockout_max: int = 3600
    address_max_failures: int = 50
    address_window: int = 15 * 60
    # New captcha pictures per client address per minute (a carrier's NAT may need more).
    captcha_images_per_address: int = 30
    # Number of reverse proxies in front of the app whose X-Forwarded-* headers are trusted.
    trusted_proxies: int = 0
    backchannel_logout_timeout: float = 2.0
    default_locale: str = "ru"
    # Delivery: unset = the development outbox (shown at /dev/outbox), refused in production.
    sms_gateway_url: str | None = None
    sms_gateway_user: str | None = None
    sms_gateway_password: str | None = None
    sms_gateway_token: str | None = None
    sms_gateway_body: str = "json"
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_security: str = "starttls"
    mail_from: str = "ЕЛК Ростелеком <no-reply@lk.rt.ru>"
    # host:port of the linking service for automatic attachment; unset: not called.
    linking_target: str | None = None
    # TLS to the linking service (PEM files): the CA that signed its certificate, and for
    # mutual TLS our client certificate and key. Unset: plaintext (refused in production
    # unless linking_allow_plaintext says a mesh encrypts the hop).
    linking_tls_ca: str | None = None
    linking_tls_cert: str | None = None
    linking_tls_key: str | None = None
    linking_allow_plaintext: bool = False
    terms_version: str = "2026-01"
    privacy_version: str = "2026-01"
    # Social sign-in (IDP_SOCIAL_*): every provider's settings, in the help pages' order, and
    # the timeout of each call to a provider, seconds.
    social: tuple[SocialProviderSettings, ...] = ()
    social_timeout: float = 5.0
    # Prometheus exposition on a port of its own (None: off). Log lines: "json" or "text".
    metrics_port: int | None = None
    log_format: str = "text"
    # `idp purge`: audit events and delivered/dead outbox rows older than these are deleted.
    audit_retention_days: int = 400
    outbox_retention_days: int = 7

    def __repr__(self) -> str:
        shown = []
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in SECRET_FIELDS and value:
                value = "***"
            elif item.name in URL_FIELDS and value:
                value = mask_url(value)
            shown.append(f"{item.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    __str__ = __repr__

    @property
    def dev_outbox(self) -> bool:
        """Messages go to the outbox page instead of the gateway and the mail server."""
        return self.env != "production" and not (self.sms_gateway_url and self.smtp_host)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def secure_cookies(self) -> bool:
        return self.issuer.startswith("https://")

    @property
    def scopes_supported(self) -> tuple[str, ...]:
        return STANDARD_SCOPES + tuple(s for s in self.extra_scopes if s not in STANDARD_SCOPES)

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)

    def social_provider(self, name: str) -> SocialProviderSettings | None:
        return next((p for p in self.social if p.name == name), None)


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def _words(env: Mapping[str, str], name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
    if name not in env:
        return default
    return tuple(w for w in (env.get(name) or "").replace(",", " ").split() if w)


def _linking_transport(env: Mapping[str, str], mode: str) -> dict:
    """IDP_LINKING_TARGET and how to reach it: TLS files that exist, cert and key together,
    and in production no plaintext unless IDP_LINKING_ALLOW_PLAINTEXT=true."""
    target = env.get("IDP_LINKING_TARGET") or None
    files = {}
    for name in ("CA", "CERT", "KEY"):
        value = env.get(f"IDP_LINKING_TLS_{name}") or None
        if value is not None and not Path(value).is_file():
            raise ConfigError(f"IDP_LINKING_TLS_{name} must name a readable PEM file: {value}")
        files[name.lower()] = value
    if bool(files["cert"]) != bool(files["key"]):
        raise ConfigError("IDP_LINKING_TLS_CERT and IDP_LINKING_TLS_KEY go together (mutual TLS)")
    if files["cert"] and not files["ca"]:
        raise ConfigError("IDP_LINKING_TLS_CERT needs IDP_LINKING_TLS_CA (the server's CA)")
    plaintext = env.get("IDP_LINKING_ALLOW_PLAINTEXT", "false").lower()
    if plaintext not in ("true", "false"):
        raise ConfigError("IDP_LINKING_ALLOW_PLAINTEXT must be true or false")
    if mode == "production" and target and not files["ca"] and plaintext != "true":
        raise ConfigError(
            "IDP_LINKING_TARGET needs IDP_LINKING_TLS_CA in production "
            "(or IDP_LINKING_ALLOW_PLAINTEXT=true when a mesh encrypts the hop)"
        )
    return {
        "linking_target": target,
        "linking_tls_ca": files["ca"],
        "linking_tls_cert": files["cert"],
        "linking_tls_key": files["key"],
        "linking_allow_plaintext": plaintext == "true",
    }


def metrics_port_of(env: Mapping[str, str]) -> int | None:
    """IDP_METRICS_PORT: unset → 9100 in production, off elsewhere (a developer's machine
    runs several copies); empty, ``0`` or ``off`` → off; else a port number. Read on its own
    too: gunicorn's master serves the metrics of all its workers and builds no app."""
    mode = env.get("IDP_ENV", "development")
    raw = env.get("IDP_METRICS_PORT")
    if raw is None:
        return 9100 if mode == "production" else None
    if raw.strip().lower() in ("", "0", "off"):
        return None
    port = _int(env, "IDP_METRICS_PORT", 9100)
    if port > 65535:
        raise ConfigError(f"IDP_METRICS_PORT must be a port number, got {port}")
    return port


def log_format_of(env: Mapping[str, str]) -> str:
    """IDP_LOG_FORMAT: ``json`` (one object per line; the default in production) or ``text``.
    Read on its own too: gunicorn's logger is set up before the app's settings exist."""
    mode = env.get("IDP_ENV", "development")
    value = env.get("IDP_LOG_FORMAT") or ("json" if mode == "production" else "text")
    if value not in ("json", "text"):
        raise ConfigError(f"IDP_LOG_FORMAT must be json or text, got {value!r}")
    return value


def _is_loopback(host: str | None) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def _dev_secret(var_dir: Path) -> str:
    """A development secret kept in ``var/secret_key`` so the CLI and the server agree."""
    path = var_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def load_settings(env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Build and validate :class:`Settings` from ``env`` (``os.environ`` by default)."""
    env = dict(os.environ if env is None else env)
    mode = env.get("IDP_ENV", "development")
    if mode not in ENVIRONMENTS:
        raise ConfigError(f"IDP_ENV must be one of {', '.join(ENVIRONMENTS)}, got {mode!r}")
    var_dir = Path(env.get("IDP_VAR_DIR", "var")).resolve()

    issuer = env.get("IDP_ISSUER", "http://127.0.0.1:8000").rstrip("/")
    parts = urlsplit(issuer)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"IDP_ISSUER must be an absolute http(s) URL, got {issuer!r}")
    if parts.query or parts.fragment:
        raise ConfigError("IDP_ISSUER must not have a query or fragment (OIDC Discovery §3)")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError("IDP_ISSUER must use https unless it is a loopback address")
    if mode == "production" and parts.scheme != "https":
        raise ConfigError("IDP_ISSUER must use https in production")

    secret = env.get("IDP_SECRET_KEY", "")
    if mode == "production":
        if len(secret) < 32:
            raise ConfigError("IDP_SECRET_KEY must be set to at least 32 characters in production")
    elif not secret:
        secret = _dev_secret(var_dir)
    elif len(secret) < 16:
        raise ConfigError("IDP_SECRET_KEY must be at least 16 characters")

    database_url = env.get("IDP_DATABASE_URL", "")
    if not database_url:
        if mode == "production":
            raise ConfigError("IDP_DATABASE_URL must be set in production (PostgreSQL)")
        var_dir.mkdir(parents=True, exist_ok=True)
        database_url = f"sqlite:///{var_dir / 'idp.sqlite3'}"
    if database_url.startswith("postgres://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgres://") :]
    elif database_url.startswith("postgresql://"):
        database_url = "postgresql+psycopg://" + database_url[len("postgresql://") :]
    if not database_url.startswith(("sqlite:///", "postgresql+psycopg://")):
        raise ConfigError("IDP_DATABASE_URL must be a sqlite:/// or postgresql:// URL")
    if mode == "production" and database_url.startswith("sqlite"):
        raise ConfigError("IDP_DATABASE_URL must point to PostgreSQL in production")

    redis_url = env.get("IDP_REDIS_URL") or None
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("IDP_REDIS_URL must be a redis://, rediss:// or unix:// URL")
    if mode == "production" and not redis_url:
        raise ConfigError(
            "IDP_REDIS_URL must be set in production: the in-process store serves one process only"
        )

    linking = _linking_transport(env, mode)
    alg = env.get("IDP_SIGNING_ALG", "ES256")
    lockout_base = _int(env, "IDP_LOGIN_LOCKOUT_BASE", 30)
    lockout_max = _int(env, "IDP_LOGIN_LOCKOUT_MAX", 3600)
    if lockout_max < lockout_base:
        raise ConfigError(
            f"IDP_LOGIN_LOCKOUT_MAX ({lockout_max}) must be at least "
            f"IDP_LOGIN_LOCKOUT_BASE ({lockout_base})"
        )
    if alg not in ("ES256", "RS256"):
        raise ConfigError(f"IDP_SIGNING_ALG must be ES256 or RS256, got {alg!r}")

    # The linking service's scopes and resource are part of the product: on by default.
    extra_scopes = _words(env, "IDP_EXTRA_SCOPES", LINKING_SCOPES)
    for scope in extra_scopes:
        if not scope.isascii() or any(c in scope for c in ' "\\'):
            raise ConfigError(f"IDP_EXTRA_SCOPES has an invalid scope {scope!r}")
    resources = _words(env, "IDP_RESOURCES", (LINKING_RESOURCE,))
    for res in resources:
        rp = urlsplit(res)
        if not rp.scheme or rp.fragment:
            raise ConfigError(f"IDP_RESOURCES must hold absolute URIs, got {res!r} (RFC 8707 §2)")

    locale = env.get("IDP_DEFAULT_LOCALE", "ru")
    if locale not in ("ru", "en"):
        raise ConfigError(f"IDP_DEFAULT_LOCALE must be ru or en, got {locale!r}")

    sms_url = env.get("IDP_SMS_GATEWAY_URL") or None
    if sms_url and urlsplit(sms_url).scheme not in ("http", "https"):
        raise ConfigError("IDP_SMS_GATEWAY_URL must be an http(s) URL")
    body = env.get("IDP_SMS_GATEWAY_BODY", "json")
    if body not in ("json", "form"):
        raise ConfigError("IDP_SMS_GATEWAY_BODY must be json or form")
    smtp_host = env.get("IDP_SMTP_HOST") or None
    security = env.get("IDP_SMTP_SECURITY", "starttls")
    if security not in ("starttls", "tls", "none"):
        raise ConfigError("IDP_SMTP_SECURITY must be starttls, tls or none")
    if mode == "production" and not (sms_url and smtp_host):
        raise ConfigError(
            "IDP_SMS_GATEWAY_URL and IDP_SMTP_HOST must be set in production "
            "(the development outbox is not for customers)"
        )

    settings = Settings(
        env=mode,
        issuer=issuer,
        secret_key=secret,
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=env.get("IDP_REDIS_PREFIX", "idp:"),
        var_dir=var_dir,
        code_ttl=_int(env, "IDP_CODE_TTL", 60),
        access_token_ttl=_int(env, "IDP_ACCESS_TOKEN_TTL", 600),
        id_token_ttl=_int(env, "IDP_ID_TOKEN_TTL", 600),
        refresh_token_ttl=_int(env, "IDP_REFRESH_TOKEN_TTL", 30 * 24 * 3600),
        session_ttl=_int(env, "IDP_SESSION_TTL", 12 * 3600),
        remember_me_ttl=_int(env, "IDP_REMEMBER_ME_TTL", 30 * 24 * 3600),
        extra_scopes=extra_scopes,
        resources=resources,
        default_signing_alg=alg,
        login_max_failures=_int(env, "IDP_LOGIN_MAX_FAILURES", 10),
        login_lockout_base=lockout_base,
        login_lockout_max=lockout_max,
        address_max_failures=_int(env, "IDP_ADDRESS_MAX_FAILURES", 50),
        captcha_images_per_address=_int(env, "IDP_CAPTCHA_IMAGES_PER_ADDRESS", 30),
        trusted_proxies=_int(env, "IDP_TRUSTED_PROXIES", 0, minimum=0),
        default_locale=locale,
        sms_gateway_url=sms_url,
        sms_gateway_user=env.get("IDP_SMS_GATEWAY_USER") or None,
        sms_gateway_password=env.get("IDP_SMS_GATEWAY_PASSWORD") or None,
        sms_gateway_token=env.get("IDP_SMS_GATEWAY_TOKEN") or None,
        sms_gateway_body=body,
        smtp_host=smtp_host,
        smtp_port=_int(env, "IDP_SMTP_PORT", 587),
        smtp_user=env.get("IDP_SMTP_USER") or None,
        smtp_password=env.get("IDP_SMTP_PASSWORD") or None,
        smtp_security=security,
        mail_from=env.get("IDP_MAIL_FROM", "ЕЛК Ростелеком <no-reply@lk.rt.ru>"),
        social=_social(env, mode),
        social_timeout=_seconds(env, "IDP_SOCIAL_TIMEOUT", 5.0),
        metrics_port=metrics_port_of(env),
        log_format=log_format_of(env),
        audit_retention_days=_int(env, "IDP_AUDIT_RETENTION_DAYS", 400),
        outbox_retention_days=_int(env, "IDP_OUTBOX_RETENTION_DAYS", 7),
        **linking,
    )
    if settings.code_ttl > 600:
        raise ConfigError("IDP_CODE_TTL must be at most 600 seconds (RFC 6749 §4.1.2)")
    if settings.remember_me_ttl > 30 * 24 * 3600:
        raise ConfigError("IDP_REMEMBER_ME_TTL must be at most 30 days (NIST SP 800-63B AAL1)")
    return replace(settings, **overrides) if overrides else settings


# Each provider's hosts by role, the real ones by default: IDP_SOCIAL_<PROVIDER>_<ROLE>_URL.
SOCIAL_URLS: dict[str, dict[str, str]] = {
    "vkid": {"base": "https://id.vk.com"},
    "mail": {"base": "https://oauth.mail.ru"},  # mode=vkid: the VK ID host, see _social()
    "ok": {"connect": "https://connect.ok.ru", "api": "https://api.ok.ru"},
    "yandex": {"oauth": "https://oauth.yandex.ru", "login": "https://login.yandex.ru"},
    "google": {"discovery": "https://accounts.google.com/.well-known/openid-configuration"},
    "facebook": {"www": "https://www.facebook.com", "graph": "https://graph.facebook.com"},
}
# Which credentials a provider cannot work without (VK ID's code exchange takes no secret).
_SOCIAL_NEEDS = {
    "vkid": ("CLIENT_ID",),
    "mail": ("CLIENT_ID", "CLIENT_SECRET"),  # mode=vkid: CLIENT_ID only
    "ok": ("CLIENT_ID", "CLIENT_SECRET", "APPLICATION_KEY"),
    "yandex": ("CLIENT_ID", "CLIENT_SECRET"),
    "google": ("CLIENT_ID", "CLIENT_SECRET"),
    "facebook": ("CLIENT_ID", "CLIENT_SECRET"),
}
FACEBOOK_API_VERSION = "v24.0"
_FB_VERSION = re.compile(r"v\d+\.\d+")


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value <= 60:
        raise ConfigError(f"{name} must be more than 0 and at most 60 seconds, got {raw}")
    return value


def _social(env: Mapping[str, str], mode: str) -> tuple[SocialProviderSettings, ...]:
    """IDP_SOCIAL_<PROVIDER>_{ENABLED,CLIENT_ID,CLIENT_SECRET,...} for the six providers, in
    the help pages' order. An enabled provider without its credentials is refused in
    production (ConfigError naming the variable); in development it is allowed so that the
    local fakes, which accept their own test credentials, can be named instead."""
    providers = ("vkid", "mail", "ok", "yandex", "google", "facebook")
    result = []
    for name in providers:
        prefix = f"IDP_SOCIAL_{name.upper()}_"
        enabled = env.get(prefix + "ENABLED", "false").lower()
        if enabled not in ("true", "false"):
            raise ConfigError(f"{prefix}ENABLED must be true or false, got {enabled!r}")
        provider_mode = ""
        needs = _SOCIAL_NEEDS[name]
        defaults = dict(SOCIAL_URLS[name])
        if name == "mail":
            provider_mode = env.get(prefix + "MODE", "oauth")
            if provider_mode not in ("oauth", "vkid"):
                raise ConfigError(f"{prefix}MODE must be oauth or vkid, got {provider_mode!r}")
            if provider_mode == "vkid":
                needs = ("CLIENT_ID",)
                defaults = {
                    "base": env.get("IDP_SOCIAL_VKID_BASE_URL") or SOCIAL_URLS["vkid"]["base"]
                }
        urls = []
        for role, default in defaults.items():
            variable = f"{prefix}{role.upper()}_URL"
            value = (env.get(variable) or default).rstrip("/")
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"{variable} must be an absolute http(s) URL, got {value!r}")
            if mode == "production" and parts.scheme != "https":
                raise ConfigError(f"{variable} must use https in production")
            urls.append((role, value))
        version = ""
        if name == "facebook":
            version = env.get(prefix + "API_VERSION") or FACEBOOK_API_VERSION
            if not _FB_VERSION.fullmatch(version):
                raise ConfigError(f"{prefix}API_VERSION must look like v24.0, got {version!r}")
        values = {
            key: env.get(prefix + key) or ""
            for key in ("CLIENT_ID", "CLIENT_SECRET", "APPLICATION_KEY")
        }
        if name == "mail" and provider_mode == "vkid" and not values["CLIENT_ID"]:
            values["CLIENT_ID"] = env.get("IDP_SOCIAL_VKID_CLIENT_ID") or ""
        if enabled == "true" and mode == "production":
            for key in needs:
                if not values[key]:
                    raise ConfigError(f"{prefix}{key} must be set when {prefix}ENABLED=true")
        result.append(
            SocialProviderSettings(
                name=name,
                enabled=enabled == "true",
                client_id=values["CLIENT_ID"],
                client_secret=values["CLIENT_SECRET"],
                application_key=values["APPLICATION_KEY"],
                mode=provider_mode,
                api_version=version,
                urls=tuple(urls),
            )
        )
    return tuple(result)


# Every variable load_settings reads: the deployment files and README's operations table are
# checked against it (tests/deploy/test_settings_names.py proves each one changes the result).
ENV_VARS: tuple[str, ...] = (
    "IDP_ACCESS_TOKEN_TTL",
    "IDP_ADDRESS_MAX_FAILURES",
    "IDP_AUDIT_RETENTION_DAYS",
    "IDP_CAPTCHA_IMAGES_PER_ADDRESS",
    "IDP_CODE_TTL",
    "IDP_DATABASE_URL",
    "IDP_DEFAULT_LOCALE",
    "IDP_ENV",
    "IDP_EXTRA_SCOPES",
    "IDP_ID_TOKEN_TTL",
    "IDP_ISSUER",
    "IDP_LINKING_ALLOW_PLAINTEXT",
    "IDP_LINKING_TARGET",
    "IDP_LINKING_TLS_CA",
    "IDP_LINKING_TLS_CERT",
    "IDP_LINKING_TLS_KEY",
    "IDP_LOGIN_LOCKOUT_BASE",
    "IDP_LOGIN_LOCKOUT_MAX",
    "IDP_LOGIN_MAX_FAILURES",
    "IDP_LOG_FORMAT",
    "IDP_MAIL_FROM",
    "IDP_METRICS_PORT",
    "IDP_OUTBOX_RETENTION_DAYS",
    "IDP_REDIS_PREFIX",
    "IDP_REDIS_URL",
    "IDP_REFRESH_TOKEN_TTL",
    "IDP_REMEMBER_ME_TTL",
    "IDP_RESOURCES",
    "IDP_SECRET_KEY",
    "IDP_SESSION_TTL",
    "IDP_SIGNING_ALG",
    "IDP_SMS_GATEWAY_BODY",
    "IDP_SMS_GATEWAY_PASSWORD",
    "IDP_SMS_GATEWAY_TOKEN",
    "IDP_SMS_GATEWAY_URL",
    "IDP_SMS_GATEWAY_USER",
    "IDP_SMTP_HOST",
    "IDP_SMTP_PASSWORD",
    "IDP_SMTP_PORT",
    "IDP_SMTP_SECURITY",
    "IDP_SMTP_USER",
    "IDP_SOCIAL_TIMEOUT",
    "IDP_TRUSTED_PROXIES",
    "IDP_VAR_DIR",
)

# The social providers' variables are formed per provider (see _social); listed here in full.
SOCIAL_ENV_VARS: tuple[str, ...] = tuple(
    f"IDP_SOCIAL_{name.upper()}_{key}"
    for name, roles in SOCIAL_URLS.items()
    for key in (
        "ENABLED",
        "CLIENT_ID",
        "CLIENT_SECRET",
        *(("APPLICATION_KEY",) if name == "ok" else ()),
        *(("MODE",) if name == "mail" else ()),
        *(("API_VERSION",) if name == "facebook" else ()),
        *(f"{role.upper()}_URL" for role in roles),
    )
)
ENV_VARS = ENV_VARS + SOCIAL_ENV_VARS

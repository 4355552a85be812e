"""Settings from IDP_* variables: defaults, and refusals that name the variable."""

from __future__ import annotations

import os
import stat

import pytest

from idp.config import ConfigError, load_settings

PROD_SECRET = "p" * 32


def dev(tmp_path, **env) -> dict:
    return {"IDP_VAR_DIR": str(tmp_path), **env}


def prod(tmp_path, **env) -> dict:
    base = {
        "IDP_VAR_DIR": str(tmp_path),
        "IDP_ENV": "production",
        "IDP_ISSUER": "https://id.example.com",
        "IDP_SECRET_KEY": PROD_SECRET,
        "IDP_DATABASE_URL": "postgresql://idp@db.internal:5432/idp",
        "IDP_REDIS_URL": "redis://cache.internal:6379/0",
        "IDP_SMS_GATEWAY_URL": "https://sms.internal/send",
        "IDP_SMTP_HOST": "smtp.internal",
    }
    base.update(env)
    return {k: v for k, v in base.items() if v is not None}


def refused(env: dict, variable: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_settings(env)
    assert variable in str(info.value), str(info.value)
    return str(info.value)


# --- defaults ---------------------------------------------------------------------------


def test_development_defaults(tmp_path):
    s = load_settings(dev(tmp_path))
    var = tmp_path.resolve()
    assert s.env == "development"
    assert not s.is_production
    assert s.var_dir == var
    assert s.issuer == "http://127.0.0.1:8000"
    assert s.database_url == f"sqlite:///{var / 'idp.sqlite3'}"
    assert s.redis_url is None
    assert s.default_signing_alg == "ES256"
    assert s.code_ttl == 60
    assert s.remember_me_ttl == 30 * 24 * 3600
    assert s.secure_cookies is False
    assert len(s.secret_key) >= 32


def test_does_not_read_os_environ_when_given_a_mapping(tmp_path, monkeypatch):
    monkeypatch.setenv("IDP_ENV", "bogus")
    assert load_settings(dev(tmp_path)).env == "development"


def test_development_secret_file_is_private_and_reused(tmp_path):
    first = load_settings(dev(tmp_path))
    path = tmp_path / "secret_key"
    assert path.is_file()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert path.read_text().strip() == first.secret_key
    second = load_settings(dev(tmp_path))
    assert second.secret_key == first.secret_key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_development_secret_is_created_under_a_missing_var_dir(tmp_path):
    var = tmp_path / "nested" / "var"
    s = load_settings({"IDP_VAR_DIR": str(var)})
    assert (var / "secret_key").read_text().strip() == s.secret_key


def test_development_secrets_differ_between_var_dirs(tmp_path):
    a = load_settings(dev(tmp_path / "a"))
    b = load_settings(dev(tmp_path / "b"))
    assert a.secret_key != b.secret_key


def test_explicit_secret_is_used_and_no_file_written(tmp_path):
    s = load_settings(dev(tmp_path, IDP_SECRET_KEY="explicit-secret-0123"))
    assert s.secret_key == "explicit-secret-0123"
    assert not (tmp_path / "secret_key").exists()


def test_short_development_secret_is_refused(tmp_path):
    refused(dev(tmp_path, IDP_SECRET_KEY="short"), "IDP_SECRET_KEY")


def test_loopback_http_issuers_are_allowed_in_development(tmp_path):
    for issuer in ("http://127.0.0.1:5000", "http://localhost:8000", "http://[::1]:8000"):
        assert load_settings(dev(tmp_path, IDP_ISSUER=issuer)).issuer == issuer


def test_issuer_trailing_slash_is_dropped(tmp_path):
    s = load_settings(dev(tmp_path, IDP_ISSUER="https://id.example.com/"))
    assert s.issuer == "https://id.example.com"
    assert s.secure_cookies is True


def test_valid_production(tmp_path):
    s = load_settings(prod(tmp_path))
    assert s.is_production
    assert s.issuer == "https://id.example.com"
    assert s.secret_key == PROD_SECRET
    assert s.database_url == "postgresql+psycopg://idp@db.internal:5432/idp"
    assert s.redis_url == "redis://cache.internal:6379/0"
    assert not (tmp_path / "secret_key").exists()


# --- refusals ---------------------------------------------------------------------------


def test_unknown_environment(tmp_path):
    message = refused(dev(tmp_path, IDP_ENV="bogus"), "IDP_ENV")
    assert "bogus" in message


@pytest.mark.parametrize(
    "issuer",
    ["http://id.example.com", "http://127.0.0.1.nip.io:8000", "http://10.0.0.5:8000"],
)
def test_http_issuer_on_non_loopback_host(tmp_path, issuer):
    refused(dev(tmp_path, IDP_ISSUER=issuer), "IDP_ISSUER")


@pytest.mark.parametrize(
    "issuer", ["ftp://id.example.com", "id.example.com", "https://id.example.com/?x=1"]
)
def test_malformed_issuer(tmp_path, issuer):
    refused(dev(tmp_path, IDP_ISSUER=issuer), "IDP_ISSUER")


def test_production_needs_https_even_on_loopback(tmp_path):
    refused(prod(tmp_path, IDP_ISSUER="http://127.0.0.1:8000"), "IDP_ISSUER")


def test_production_needs_a_secret_key(tmp_path):
    refused(prod(tmp_path, IDP_SECRET_KEY=None), "IDP_SECRET_KEY")
    # It must not fall back to generating a development secret.
    assert not (tmp_path / "secret_key").exists()


def test_production_refuses_a_short_secret_key(tmp_path):
    refused(prod(tmp_path, IDP_SECRET_KEY="k" * 31), "IDP_SECRET_KEY")
    assert load_settings(prod(tmp_path, IDP_SECRET_KEY="k" * 32)).secret_key == "k" * 32


def test_production_needs_a_database_url(tmp_path):
    refused(prod(tmp_path, IDP_DATABASE_URL=None), "IDP_DATABASE_URL")
    assert not (tmp_path / "idp.sqlite3").exists()


def test_production_refuses_sqlite(tmp_path):
    refused(prod(tmp_path, IDP_DATABASE_URL=f"sqlite:///{tmp_path}/x.db"), "IDP_DATABASE_URL")


def test_production_needs_redis(tmp_path):
    refused(prod(tmp_path, IDP_REDIS_URL=None), "IDP_REDIS_URL")


def test_unsupported_database_url(tmp_path):
    refused(dev(tmp_path, IDP_DATABASE_URL="mysql://u@h/db"), "IDP_DATABASE_URL")


def test_bad_redis_url(tmp_path):
    refused(dev(tmp_path, IDP_REDIS_URL="http://cache:6379"), "IDP_REDIS_URL")


@pytest.mark.parametrize("value", ["abc", "0", "601", "-5", "1.5"])
def test_bad_code_ttl(tmp_path, value):
    refused(dev(tmp_path, IDP_CODE_TTL=value), "IDP_CODE_TTL")


def test_code_ttl_bounds_accepted(tmp_path):
    assert load_settings(dev(tmp_path, IDP_CODE_TTL="1")).code_ttl == 1
    assert load_settings(dev(tmp_path, IDP_CODE_TTL="600")).code_ttl == 600


@pytest.mark.parametrize("alg", ["HS256", "none", "es256", "PS256"])
def test_bad_signing_alg(tmp_path, alg):
    refused(dev(tmp_path, IDP_SIGNING_ALG=alg), "IDP_SIGNING_ALG")


def test_rs256_signing_alg_accepted(tmp_path):
    assert load_settings(dev(tmp_path, IDP_SIGNING_ALG="RS256")).default_signing_alg == "RS256"


def test_remember_me_over_30_days(tmp_path):
    thirty_days = 30 * 24 * 3600
    refused(dev(tmp_path, IDP_REMEMBER_ME_TTL=str(thirty_days + 1)), "IDP_REMEMBER_ME_TTL")
    s = load_settings(dev(tmp_path, IDP_REMEMBER_ME_TTL=str(thirty_days)))
    assert s.remember_me_ttl == thirty_days


@pytest.mark.parametrize(
    "name", ["IDP_ACCESS_TOKEN_TTL", "IDP_ID_TOKEN_TTL", "IDP_SESSION_TTL", "IDP_REFRESH_TOKEN_TTL"]
)
def test_other_lifetimes_must_be_positive_integers(tmp_path, name):
    refused(dev(tmp_path, **{name: "0"}), name)
    refused(dev(tmp_path, **{name: "ten"}), name)


def test_bad_extra_scope_and_resource(tmp_path):
    refused(dev(tmp_path, IDP_EXTRA_SCOPES='good bad"quote'), "IDP_EXTRA_SCOPES")
    refused(dev(tmp_path, IDP_RESOURCES="not-a-uri"), "IDP_RESOURCES")


# --- URL rewriting ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
        ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
        (
            "postgresql://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dx",
            "postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3Dx",
        ),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ],
)
def test_postgres_urls_use_psycopg(tmp_path, given, expected):
    assert load_settings(dev(tmp_path, IDP_DATABASE_URL=given)).database_url == expected


def test_overrides_are_applied(tmp_path):
    s = load_settings(dev(tmp_path), code_ttl=5)
    assert s.code_ttl == 5


def test_linking_scopes_and_resource_are_offered_by_default(tmp_path):
    settings = load_settings(dev(tmp_path))
    assert {"linking", "linking:auto", "linking:read"} <= set(settings.scopes_supported)
    assert settings.resources == ("urn:elk:linking-service",)
    # an explicit empty value turns them off
    bare = load_settings(dev(tmp_path, IDP_EXTRA_SCOPES="", IDP_RESOURCES=""))
    assert "linking" not in bare.scopes_supported and bare.resources == ()


def test_production_needs_real_delivery(tmp_path):
    refused(prod(tmp_path, IDP_SMS_GATEWAY_URL=None), "IDP_SMS_GATEWAY_URL")
    refused(prod(tmp_path, IDP_SMTP_HOST=None), "IDP_SMTP_HOST")
    refused(prod(tmp_path, IDP_SMTP_SECURITY="ssl3"), "IDP_SMTP_SECURITY")
    refused(dev(tmp_path, IDP_SMS_GATEWAY_URL="ftp://x"), "IDP_SMS_GATEWAY_URL")
    assert load_settings(dev(tmp_path)).dev_outbox is True
    assert load_settings(prod(tmp_path)).dev_outbox is False


def test_lockout_windows_from_the_environment(tmp_path):
    settings = load_settings(
        dev(tmp_path, IDP_LOGIN_LOCKOUT_BASE="60", IDP_LOGIN_LOCKOUT_MAX="900")
    )
    assert (settings.login_lockout_base, settings.login_lockout_max) == (60, 900)
    defaults = load_settings(dev(tmp_path))
    assert (defaults.login_lockout_base, defaults.login_lockout_max) == (30, 3600)
    refused(dev(tmp_path, IDP_LOGIN_LOCKOUT_BASE="0"), "IDP_LOGIN_LOCKOUT_BASE")
    refused(
        dev(tmp_path, IDP_LOGIN_LOCKOUT_BASE="600", IDP_LOGIN_LOCKOUT_MAX="60"),
        "IDP_LOGIN_LOCKOUT_MAX",
    )


# --- social sign-in (IDP_SOCIAL_*) ------------------------------------------------------


def test_social_providers_are_off_by_default_with_the_real_hosts(tmp_path):
    s = load_settings(dev(tmp_path))
    assert [p.name for p in s.social] == ["vkid", "mail", "ok", "yandex", "google", "facebook"]
    assert not any(p.enabled for p in s.social)
    assert s.social_timeout == 5.0
    assert s.social_provider("vkid").url("base") == "https://id.vk.com"
    assert s.social_provider("ok").url("api") == "https://api.ok.ru"
    assert s.social_provider("mail").mode == "oauth"
    assert s.social_provider("mail").url("base") == "https://oauth.mail.ru"
    assert s.social_provider("facebook").api_version == "v24.0"


def test_social_settings_are_read(tmp_path):
    s = load_settings(
        dev(
            tmp_path,
            IDP_SOCIAL_OK_ENABLED="true",
            IDP_SOCIAL_OK_CLIENT_ID="512",
            IDP_SOCIAL_OK_CLIENT_SECRET="ok-secret-value",
            IDP_SOCIAL_OK_APPLICATION_KEY="CBAPUBLIC",
            IDP_SOCIAL_OK_API_URL="http://127.0.0.1:8092/",
            IDP_SOCIAL_FACEBOOK_API_VERSION="v19.0",
            IDP_SOCIAL_TIMEOUT="2.5",
        )
    )
    ok = s.social_provider("ok")
    assert (ok.enabled, ok.client_id, ok.application_key) == (True, "512", "CBAPUBLIC")
    assert ok.url("api") == "http://127.0.0.1:8092"
    assert ok.url("connect") == "https://connect.ok.ru"
    assert s.social_provider("facebook").api_version == "v19.0"
    assert s.social_timeout == 2.5


def test_mail_through_vkid_borrows_the_vkid_application(tmp_path):
    s = load_settings(
        dev(
            tmp_path,
            IDP_SOCIAL_MAIL_MODE="vkid",
            IDP_SOCIAL_VKID_CLIENT_ID="51234567",
            IDP_SOCIAL_VKID_BASE_URL="https://id.vk.ru",
        )
    )
    mail = s.social_provider("mail")
    assert (mail.mode, mail.client_id, mail.url("base")) == ("vkid", "51234567", "https://id.vk.ru")


def test_social_secrets_are_never_printed(tmp_path):
    s = load_settings(
        dev(
            tmp_path,
            IDP_SOCIAL_GOOGLE_CLIENT_SECRET="GOCSPX-very-secret",
            IDP_SOCIAL_GOOGLE_CLIENT_ID="g",
        )
    )
    assert "GOCSPX-very-secret" not in repr(s)
    assert "GOCSPX-very-secret" not in str(s.social_provider("google"))
    assert "client_secret='***'" in repr(s.social_provider("google"))


@pytest.mark.parametrize(
    ("provider", "missing"),
    [
        ("VKID", "CLIENT_ID"),
        ("MAIL", "CLIENT_SECRET"),
        ("OK", "APPLICATION_KEY"),
        ("YANDEX", "CLIENT_SECRET"),
        ("GOOGLE", "CLIENT_SECRET"),
        ("FACEBOOK", "CLIENT_SECRET"),
    ],
)
def test_production_refuses_an_enabled_provider_without_its_credentials(
    tmp_path, provider, missing
):
    prefix = f"IDP_SOCIAL_{provider}_"
    env = {
        prefix + "ENABLED": "true",
        prefix + "CLIENT_ID": "id",
        prefix + "CLIENT_SECRET": "secret",
        prefix + "APPLICATION_KEY": "public",
    }
    del env[prefix + missing]
    refused(prod(tmp_path, **env), prefix + missing)
    # The same set-up is allowed in development (the local fakes take test credentials)...
    load_settings(dev(tmp_path, **env))
    # ...and in production with the credential given.
    env[prefix + missing] = "given"
    assert load_settings(prod(tmp_path, **env)).social_provider(provider.lower()).enabled


def test_production_mail_through_vkid_needs_no_secret(tmp_path):
    env = prod(
        tmp_path,
        IDP_SOCIAL_MAIL_ENABLED="true",
        IDP_SOCIAL_MAIL_MODE="vkid",
        IDP_SOCIAL_VKID_CLIENT_ID="51234567",
    )
    assert load_settings(env).social_provider("mail").client_id == "51234567"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("IDP_SOCIAL_VKID_ENABLED", "yes"),
        ("IDP_SOCIAL_MAIL_MODE", "connect"),
        ("IDP_SOCIAL_FACEBOOK_API_VERSION", "24"),
        ("IDP_SOCIAL_YANDEX_OAUTH_URL", "oauth.yandex.ru"),
        ("IDP_SOCIAL_TIMEOUT", "0"),
        ("IDP_SOCIAL_TIMEOUT", "soon"),
    ],
)
def test_bad_social_values_are_refused(tmp_path, variable, value):
    refused(dev(tmp_path, **{variable: value}), variable)


def test_production_refuses_plain_http_provider_hosts(tmp_path):
    refused(prod(tmp_path, IDP_SOCIAL_VKID_BASE_URL="http://id.vk.com"), "IDP_SOCIAL_VKID_BASE_URL")

"""build_social_providers: the enabled providers only, in the buttons' order, each with the
configured timeout; Mail's shape chosen by IDP_SOCIAL_MAIL_MODE."""

from __future__ import annotations

from idp.adapters.social import build_social_providers
from idp.adapters.social.mail import MailOAuthProvider
from idp.adapters.social.vkid import VkIdProvider
from idp.config import load_settings


def build(tmp_path, **env):
    return build_social_providers(load_settings({"IDP_VAR_DIR": str(tmp_path), **env}))


def test_nothing_is_enabled_by_default(tmp_path):
    assert build(tmp_path) == {}


def test_only_the_enabled_ones_in_the_buttons_order(tmp_path):
    providers = build(
        tmp_path,
        IDP_SOCIAL_FACEBOOK_ENABLED="true",
        IDP_SOCIAL_YANDEX_ENABLED="true",
        IDP_SOCIAL_VKID_ENABLED="true",
        IDP_SOCIAL_GOOGLE_ENABLED="false",
        IDP_SOCIAL_TIMEOUT="1.5",
    )
    assert list(providers) == ["vkid", "yandex", "facebook"]
    assert all(p.name == name for name, p in providers.items())
    assert {p.http.timeout for p in providers.values()} == {1.5}


def test_mail_mode_chooses_the_adapter(tmp_path):
    oauth = build(tmp_path, IDP_SOCIAL_MAIL_ENABLED="true")["mail"]
    assert isinstance(oauth, MailOAuthProvider)
    vkid = build(
        tmp_path,
        IDP_SOCIAL_MAIL_ENABLED="true",
        IDP_SOCIAL_MAIL_MODE="vkid",
        IDP_SOCIAL_VKID_CLIENT_ID="51234567",
    )["mail"]
    assert isinstance(vkid, VkIdProvider) and vkid.name == "mail"
    assert vkid.client_id == "51234567" and vkid.base == "https://id.vk.com"

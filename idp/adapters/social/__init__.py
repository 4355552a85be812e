"""Social sign-in adapters, one module per provider, behind :class:`idp.ports.SocialProvider`.

:func:`build_social_providers` is the only entry the composition root uses: it returns the
enabled providers, in the help pages' order, built from ``IDP_SOCIAL_<PROVIDER>_*`` settings.
Swapping a local fake for the real provider is configuration only (the hosts are settings).
"""

from __future__ import annotations

from collections.abc import Callable

from idp.adapters.social.base import HttpClient
from idp.adapters.social.facebook import FacebookProvider
from idp.adapters.social.google import GoogleProvider
from idp.adapters.social.mail import MailOAuthProvider
from idp.adapters.social.ok import OkProvider
from idp.adapters.social.vkid import VkIdProvider
from idp.adapters.social.yandex import YandexProvider
from idp.config import Settings, SocialProviderSettings
from idp.domain.social import PROVIDER_NAMES
from idp.ports import SocialProvider


def _mail(settings: SocialProviderSettings, http: HttpClient) -> SocialProvider:
    """IDP_SOCIAL_MAIL_MODE: ``oauth`` (OAuth Mail, an application registered before July
    2025) or ``vkid`` (Mail as the VK ID application's additional sign-in method, the only
    way for a site new since 1 July 2025, reference §2a)."""
    if settings.mode == "vkid":
        return VkIdProvider(settings, http, name="mail", oauth_provider="mail_ru")
    return MailOAuthProvider(settings, http)


FACTORIES: dict[str, Callable[[SocialProviderSettings, HttpClient], SocialProvider]] = {
    "vkid": VkIdProvider,
    "mail": _mail,
    "ok": OkProvider,
    "yandex": YandexProvider,
    "google": GoogleProvider,
    "facebook": FacebookProvider,
}


def build_social_providers(settings: Settings) -> dict[str, SocialProvider]:
    """The enabled providers by name, in :data:`idp.domain.social.PROVIDERS` order."""
    http = HttpClient(settings.social_timeout)
    built: dict[str, SocialProvider] = {}
    for name in PROVIDER_NAMES:
        provider = settings.social_provider(name)
        if provider is not None and provider.enabled and name in FACTORIES:
            built[name] = FACTORIES[name](provider, http)
    return built

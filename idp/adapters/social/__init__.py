"""Social sign-in adapters, one module per provider, behind :class:`idp.ports.SocialProvider`.

:func:`build_social_providers` is the only entry the composition root uses: it returns the
enabled providers, in the help pages' order, built from ``IDP_SOCIAL_<PROVIDER>_*`` settings.
Swapping a local fake for the real provider is configuration only (the hosts are settings).
"""

from __future__ import annotations

from idp.config import Settings
from idp.ports import SocialProvider


def build_social_providers(settings: Settings) -> dict[str, SocialProvider]:
    """The enabled providers by name, in :data:`idp.domain.social.PROVIDERS` order."""
    return {}

"""Russia's federal subjects, as the registration form offers them.

The list itself lives with the billing data (``linking_service.regions``) so that the region a
customer picks at registration is spelled exactly as billing accounts spell it.
"""

from __future__ import annotations

import unicodedata

from idp.domain.errors import ValidationError
from linking_service.regions import REGIONS

__all__ = ["REGIONS", "check_region"]


def check_region(value: str | None) -> str:
    region = unicodedata.normalize("NFC", (value or "").strip())
    if region not in REGIONS:
        raise ValidationError("choose a region from the list", "region")
    return region

"""Russia's federal subjects (shared with the IdP through :mod:`elk_common.regions`), with the
linking service's own error: ``InvalidArgument`` (``INVALID_REGION``)."""

from __future__ import annotations

from elk_common.errors import InvalidValue
from elk_common.regions import REGIONS, russian_sort_key
from elk_common.regions import check_region as check_shared
from linking_service.domain import InvalidArgument

__all__ = ["REGIONS", "check_region", "russian_sort_key"]


def check_region(name: str) -> str:
    """Return the region as listed, or raise ``InvalidArgument`` (``INVALID_REGION``)."""
    try:
        return check_shared(name)
    except InvalidValue:
        raise InvalidArgument(
            "a region is a federal subject of Russia", reason="INVALID_REGION"
        ) from None

"""Russia's federal subjects, as the registration form offers them.

The list is shared with the linking service (:mod:`elk_common.regions`) so that the region a
customer picks at registration is spelled exactly as billing accounts spell it.
"""

from __future__ import annotations

from elk_common.errors import InvalidValue
from elk_common.regions import REGIONS
from elk_common.regions import check_region as check_shared
from idp.domain.errors import ValidationError

__all__ = ["REGIONS", "check_region"]


def check_region(value: str | None) -> str:
    try:
        return check_shared(value or "")
    except InvalidValue:
        raise ValidationError("choose a region from the list", "region") from None

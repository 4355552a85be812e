"""Ports of the linking service: the billing directory (the company's billing systems)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from linking_service.domain import BillingAccount


class BillingDirectory(Protocol):
    """Read-only view of billing accounts and proof of the right to manage them.

    Proof checks cost the same whether the account, login or number exists or not, so that
    timing reveals nothing (a dummy hash is verified on a miss).
    """

    def find_account(self, number: str) -> BillingAccount | None: ...

    def find_accounts(self, numbers: Iterable[str]) -> dict[str, BillingAccount]:
        """Those of ``numbers`` that exist, by number: one lookup for a list of accounts."""
        ...

    def accounts_by_phone(self, region: str, phone: str) -> list[BillingAccount]:
        """Accounts in ``region`` listing ``phone`` as a contact or a Home Phone number."""
        ...

    def account_by_service_login(self, login: str) -> BillingAccount | None: ...

    def verify_internet(self, account_number: str | None, login: str, password: str) -> bool:
        """True when ``login`` is a Home Internet service of the account with ``password``."""
        ...

    def verify_phone(self, account_number: str | None, phone: str, pin: str) -> bool:
        """True when ``phone`` is a Home Phone service of the account with ``pin``."""
        ...

    def matching_owner(
        self,
        region: str,
        family_name: str,
        given_name: str,
        middle_name: str | None,
        phones: Sequence[str],
        emails: Sequence[str],
    ) -> list[BillingAccount]:
        """Active accounts whose owner names and region match and that list one of the
        confirmed contacts (for automatic attachment at registration)."""
        ...

"""Scopes and the OpenID claims they release (OIDC Core §5.4)."""

from __future__ import annotations

SCOPE_CLAIMS: dict[str, tuple[str, ...]] = {
    "profile": ("name", "family_name", "given_name", "middle_name", "locale", "updated_at"),
    "email": ("email", "email_verified"),
    "phone": ("phone_number", "phone_number_verified"),
}


def split_scope(scope: str | None) -> list[str]:
    """Scope string to an ordered list without duplicates (RFC 6749 §3.3)."""
    seen: list[str] = []
    for item in (scope or "").split():
        if item not in seen:
            seen.append(item)
    return seen


def join_scope(scopes) -> str:
    return " ".join(scopes)

"""Rules for URLs that cross a trust boundary: client redirect URIs and in-site ``next``."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from idp.domain.errors import ValidationError

_LOOPBACK_NAMES = {"localhost"}


def _is_loopback(host: str | None) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def check_redirect_uri(uri: str) -> str:
    """Validate a redirect URI at registration.

    RFC 6749 §3.1.2: absolute, no fragment. RFC 9700 §2.6 / RFC 8252 §8.3: ``https``, or
    ``http`` only on a loopback host. Matching at request time is exact string comparison
    (OIDC Core §3.1.2.1), so the registered form is kept verbatim.
    """
    if len(uri) > 2000 or any(c.isspace() or ord(c) < 0x20 for c in uri):
        raise ValidationError(f"redirect URI {uri!r} is malformed", field="redirect_uri")
    parts = urlsplit(uri)
    if parts.fragment or "#" in uri:
        raise ValidationError(f"redirect URI {uri!r} must not have a fragment", "redirect_uri")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValidationError(f"redirect URI {uri!r} must not carry user info", "redirect_uri")
    if parts.scheme == "https" and parts.hostname:
        return uri
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return uri
    raise ValidationError(
        f"redirect URI {uri!r} must be https (http only on a loopback address)", "redirect_uri"
    )


def safe_next(target: str | None, allowed_prefixes: tuple[str, ...], default: str) -> str:
    """Return ``target`` only if it is a same-site path starting with an allowed prefix.

    Refuses absolute and scheme-relative URLs (``//evil``, ``/\\evil``), ``javascript:`` and
    anything with control characters (checklist item 39).
    """
    if not target or len(target) > 2000:
        return default
    if any(ord(c) < 0x21 or c == "\\" for c in target):
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if not any(
        parts.path == p or parts.path.startswith(p.rstrip("/") + "/") for p in allowed_prefixes
    ):
        return default
    return target

"""Social sign-in: the provider-neutral facts the IdP keeps about a person's account at a
social network (VK ID, Mail, OK, Yandex ID, Google, Facebook).

An identity is keyed by ``(provider, subject)`` — never by e-mail or phone, which only
prefill registration and are never trusted to merge accounts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The help pages' order and the labels of the six buttons under «Или войдите с помощью соцсетей:».
PROVIDERS: tuple[tuple[str, str, str], ...] = (
    # (name, button label, name shown in sentences)
    ("vkid", "VK", "VK ID"),
    ("mail", "@", "Mail"),
    # The network's own name since 2022: «Одноклассники» (plural) breaks the sentences
    # «Данные из %s…», «%s привязан…».
    ("ok", "OK", "OK"),
    ("yandex", "Я", "Яндекс ID"),
    ("google", "G", "Google"),
    ("facebook", "f", "Facebook"),
)
PROVIDER_NAMES = tuple(name for name, _, _ in PROVIDERS)


@dataclass(frozen=True)
class SocialProfile:
    """A person as one provider describes them, normalised."""

    provider: str
    subject: str  # always str(provider's stable user id)
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    email_verified: bool = False  # False unless the provider asserts it (Google only)
    phone: str | None = None  # E.164 where the provider gives one
    raw: dict = field(default_factory=dict, repr=False, compare=False)


class SocialError(Exception):
    """A provider round trip that cannot sign anybody in. ``kind`` picks the message:

    * ``denied`` — the person refused access at the provider;
    * ``invalid_grant`` — the code was rejected (expired, reused, wrong verifier);
    * ``unavailable`` — the provider is down, slow (timeout) or answered 5xx;
    * ``bad_response`` — an unexpected shape, a signature or proof mismatch;
    * ``state`` — missing, foreign or replayed ``state`` (or another provider's answer);
    * ``nonce`` — an ID token whose nonce, audience or issuer is not ours;
    * ``config`` — the provider is disabled or misconfigured.
    """

    KINDS = ("denied", "invalid_grant", "unavailable", "bad_response", "state", "nonce", "config")

    def __init__(self, kind: str, detail: str = "") -> None:
        assert kind in self.KINDS, kind
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail

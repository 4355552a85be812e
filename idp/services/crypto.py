"""Small cryptographic helpers shared by the services."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random secret; 32 bytes give 256 bits (RFC 6749 §10.10 asks ≥128)."""
    return secrets.token_urlsafe(nbytes)


def new_client_id() -> str:
    """A client_id (144 random bits, URL-safe) that never starts with ``-``: an operator
    types it on command lines (``idp clients delete ID``), where it would read as an option."""
    while True:
        value = secrets.token_urlsafe(18)
        if not value.startswith("-"):
            return value


def sha256_hex(value: str) -> str:
    """Lookup digest of a high-entropy secret (codes, refresh tokens, session ids)."""
    return hashlib.sha256(value.encode()).hexdigest()


def derive_key(secret: str, purpose: str, length: int = 32) -> bytes:
    """A sub-key of ``IDP_SECRET_KEY`` for one purpose (HKDF-SHA256, RFC 5869)."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode()).derive(
        secret.encode()
    )


class KeyedDigest:
    """HMAC-SHA256 under a derived key: how client secrets are stored.

    A client secret is 256 random bits, so a fast keyed digest is as strong as a slow password
    hash against guessing, and a stolen database is useless without the key. A slow hash
    would cap the token endpoint at a few dozen requests per second.
    """

    def __init__(self, secret: str) -> None:
        self._key = derive_key(secret, "client-secret-digest")

    def digest(self, value: str) -> str:
        return hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()

    def verify(self, value: str, digest: str | None) -> bool:
        return digest is not None and hmac.compare_digest(self.digest(value), digest)


class Sealer:
    """AES-256-GCM encryption of small secrets at rest (private signing keys)."""

    def __init__(self, secret: str) -> None:
        self._aead = AESGCM(derive_key(secret, "signing-key-encryption"))

    def seal(self, plaintext: str, context: str) -> str:
        nonce = os.urandom(12)
        data = self._aead.encrypt(nonce, plaintext.encode(), context.encode())
        return base64.urlsafe_b64encode(nonce + data).decode()

    def open(self, sealed: str, context: str) -> str:
        raw = base64.urlsafe_b64decode(sealed.encode())
        return self._aead.decrypt(raw[:12], raw[12:], context.encode()).decode()

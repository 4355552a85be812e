"""The bare cost of each scenario's dominant primitive, in this process on one thread: an
argon2id verification with the IdP's parameters, ES256 and RS256 sign + verify of an access
token sized JWT (joserfc, as the IdP and the linking service use it)."""

from __future__ import annotations

import time

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from idp.services.passwords import PasswordHasher


def primitives() -> dict:
    """name -> a callable doing one operation."""
    hasher = PasswordHasher()
    stored = hasher.hash("Bench-пароль-0123")
    claims = {
        "iss": "http://127.0.0.1:8000",
        "sub": "12345",
        "aud": "urn:elk:linking-service",
        "client_id": "bench-client-0123456789",
        "scope": "linking:read",
        "iat": int(time.time()),
        "exp": int(time.time()) + 600,
        "jti": "0123456789abcdef0123456789abcdef",
    }
    ops = {"argon2id verify": lambda: hasher.verify(stored, "Bench-пароль-0123")}
    for alg, key in (
        ("ES256", ECKey.generate_key("P-256")),
        ("RS256", RSAKey.generate_key(2048)),
    ):
        header = {"alg": alg, "kid": "k", "typ": "at+jwt"}

        def sign_verify(key=key, header=header, alg=alg):
            jwt.decode(jwt.encode(header, claims, key, algorithms=[alg]), key, algorithms=[alg])

        ops[f"{alg} sign + verify"] = sign_verify
    return ops

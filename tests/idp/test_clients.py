"""Client registration: secrets kept only as keyed digests, and the metadata rules."""

from __future__ import annotations

import hashlib
import hmac

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc.jwk import ECKey, RSAKey

from idp.domain.errors import ValidationError
from idp.services.crypto import KeyedDigest

CB = ["https://rp.example.com/cb"]


def secret_key(live) -> str:
    return live.app.extensions["idp.settings"].secret_key


def public_jwks() -> dict:
    key = ECKey.generate_key("P-256")
    return {"keys": [{**key.as_dict(private=False), "kid": "k1", "use": "sig"}]}


def stored_client_ids(live) -> list[str]:
    return [c.client_id for c in live.services.clients.list()]


# --- secrets --------------------------------------------------------------------------


def test_secret_is_stored_only_as_keyed_digest(live):
    from idp.extensions import db

    with live.ctx():
        created = live.services.clients.create(name="Портал", redirect_uris=CB)
        secret = created.secret
        assert secret and len(secret) >= 32
        client = created.client
        assert client.token_endpoint_auth_method == "client_secret_basic"
        assert client.secret_digest != secret
        assert secret not in client.secret_digest
        assert client.secret_digest == KeyedDigest(secret_key(live)).digest(secret)
        # Independently: HMAC-SHA256 under an HKDF sub-key of IDP_SECRET_KEY, not a bare hash.
        sub_key = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"client-secret-digest"
        ).derive(secret_key(live).encode())
        assert client.secret_digest == hmac.new(sub_key, secret.encode(), "sha256").hexdigest()
        assert client.secret_digest != hashlib.sha256(secret.encode()).hexdigest()
        assert client.secret_digest != KeyedDigest(secret_key(live) + "x").digest(secret)

        # And nothing else in the clients row carries the secret.
        row = db.session.execute(
            sa.text("SELECT * FROM clients WHERE client_id = :id"), {"id": client.client_id}
        ).one()
        db.session.rollback()
        assert all(secret not in str(value) for value in row)


def test_check_secret(live):
    with live.ctx():
        clients = live.services.clients
        one = clients.create(name="Один", redirect_uris=CB)
        two = clients.create(name="Два", redirect_uris=CB)
        assert one.secret != two.secret
        fresh = clients.get(one.client.client_id)
        assert clients.check_secret(fresh, one.secret) is True
        assert clients.check_secret(fresh, two.secret) is False
        assert clients.check_secret(fresh, one.secret + "x") is False
        assert clients.check_secret(fresh, one.secret[:-1]) is False
        assert clients.check_secret(fresh, "") is False
        assert clients.check_secret(fresh, fresh.secret_digest) is False


def test_public_client_has_no_secret(live):
    with live.ctx():
        clients = live.services.clients
        created = clients.create(
            name="SPA",
            redirect_uris=CB,
            public=True,
            grant_types=["authorization_code", "refresh_token"],
            secret="a-secret-that-must-be-ignored",
        )
        assert created.secret is None
        assert created.client.secret_digest is None
        assert created.client.token_endpoint_auth_method == "none"
        assert clients.check_secret(created.client, "") is False
        assert clients.check_secret(created.client, "a-secret-that-must-be-ignored") is False


def test_short_given_secret_is_refused(live):
    with live.ctx(), pytest.raises(ValidationError):
        live.services.clients.create(name="X", redirect_uris=CB, secret="too-short")


# --- registration rules ---------------------------------------------------------------

REFUSED = {
    "http non-loopback": ({"redirect_uris": ["http://rp.example.com/cb"]}, "redirect_uri"),
    "http loopback-looking name": (
        {"redirect_uris": ["http://127.0.0.1.nip.io/cb"]},
        "redirect_uri",
    ),
    "http localhost subdomain": (
        {"redirect_uris": ["http://localhost.evil.example/cb"]},
        "redirect_uri",
    ),
    "custom scheme": ({"redirect_uris": ["javascript:alert(1)"]}, "redirect_uri"),
    "relative": ({"redirect_uris": ["/cb"]}, "redirect_uri"),
    "fragment": ({"redirect_uris": ["https://rp.example.com/cb#frag"]}, "redirect_uri"),
    "empty fragment": ({"redirect_uris": ["https://rp.example.com/cb#"]}, "redirect_uri"),
    "user info": ({"redirect_uris": ["https://user:pw@rp.example.com/cb"]}, "redirect_uri"),
    "user name only": (
        {"redirect_uris": ["https://rp.example.com@evil.example/cb"]},
        "redirect_uri",
    ),
    "whitespace": ({"redirect_uris": ["https://rp.example.com/c b"]}, "redirect_uri"),
    "bad post-logout uri": (
        {"redirect_uris": CB, "post_logout_redirect_uris": ["http://rp.example.com/bye"]},
        "redirect_uri",
    ),
    "bad back-channel uri": (
        {"redirect_uris": CB, "backchannel_logout_uri": "https://rp.example.com/bc#x"},
        "redirect_uri",
    ),
    "password grant": ({"redirect_uris": CB, "grant_types": ["password"]}, "grant_type"),
    "implicit grant": ({"redirect_uris": CB, "grant_types": ["implicit"]}, "grant_type"),
    "public client_credentials": (
        {"redirect_uris": CB, "public": True, "grant_types": ["client_credentials"]},
        "grant_type",
    ),
    "code without redirect uri": ({"redirect_uris": []}, "redirect_uri"),
    "unknown scope": ({"redirect_uris": CB, "scopes": ["openid", "admin"]}, "scope"),
    "private_key_jwt without jwks": (
        {"redirect_uris": CB, "auth_method": "private_key_jwt"},
        "jwks",
    ),
    "private_key_jwt with empty jwks": (
        {"redirect_uris": CB, "auth_method": "private_key_jwt", "jwks": {"keys": []}},
        "jwks",
    ),
    "private_key_jwt with garbage jwks": (
        {"redirect_uris": CB, "auth_method": "private_key_jwt", "jwks": {"keys": [{"a": 1}]}},
        "jwks",
    ),
    "public client with secret method": (
        {"redirect_uris": CB, "public": True, "auth_method": "client_secret_basic"},
        "auth",
    ),
    "public client with private_key_jwt": (
        {"redirect_uris": CB, "public": True, "auth_method": "private_key_jwt", "jwks": "public"},
        "auth",
    ),
    "confidential client with none": ({"redirect_uris": CB, "auth_method": "none"}, "auth"),
    "unknown auth method": ({"redirect_uris": CB, "auth_method": "tls_client_auth"}, "auth"),
    "empty name": ({"name": "   ", "redirect_uris": CB}, "name"),
    "id token alg HS256": ({"redirect_uris": CB, "id_token_alg": "HS256"}, "id_token_alg"),
    "id token alg none": ({"redirect_uris": CB, "id_token_alg": "none"}, "id_token_alg"),
}


def _refusals(live, cases: dict) -> list[str]:
    """Try every case; return a description of each that was not refused as expected."""
    problems = []
    with live.ctx():
        for label, (kwargs, field) in cases.items():
            kwargs = dict(kwargs)
            kwargs.setdefault("name", "Клиент")
            if kwargs.get("jwks") == "public":
                kwargs["jwks"] = public_jwks()
            try:
                live.services.clients.create(**kwargs)
            except ValidationError as exc:
                if exc.field != field:
                    problems.append(f"{label}: refused on field {exc.field!r}, not {field!r}")
            else:
                problems.append(f"{label}: accepted")
    return problems


def test_registration_refusals(live):
    problems = _refusals(live, REFUSED)
    assert not problems, "\n".join(problems)
    with live.ctx():
        assert stored_client_ids(live) == []  # nothing half-registered


def test_private_key_in_jwks_is_refused(live):
    for private in (ECKey.generate_key("P-256"), RSAKey.generate_key(2048)):
        jwks = {"keys": [{**private.as_dict(private=True), "kid": "leak"}]}
        with live.ctx(), pytest.raises(ValidationError) as info:
            live.services.clients.create(
                name="Leaky", redirect_uris=CB, auth_method="private_key_jwt", jwks=jwks
            )
        assert info.value.field == "jwks"
    with live.ctx():
        assert stored_client_ids(live) == []


def test_user_info_is_refused_on_loopback_http_too(live):
    """The 'no user info' rule must not depend on the scheme."""
    problems = _refusals(
        live,
        {
            "http loopback with user info": (
                {"redirect_uris": ["http://user:pw@127.0.0.1:8765/cb"]},
                "redirect_uri",
            ),
            "http loopback with user name": (
                {"redirect_uris": ["http://evil.example@127.0.0.1:8765/cb"]},
                "redirect_uri",
            ),
        },
    )
    assert not problems, "\n".join(problems)


def test_loopback_http_redirect_uris_are_accepted(live):
    uris = [
        "http://127.0.0.1:8765/cb",
        "http://127.0.0.1/cb",
        "http://[::1]:8765/cb",
        "http://localhost:3000/callback?x=1",
    ]
    with live.ctx():
        created = live.services.clients.create(name="Native", redirect_uris=uris)
        assert created.client.redirect_uris == uris  # kept verbatim, for exact matching
        again = live.services.clients.get(created.client.client_id)
        assert again.redirect_uris == uris


def test_accepted_registrations(live):
    with live.ctx():
        clients = live.services.clients
        m2m = clients.create(name="Service", grant_types=["client_credentials"])
        assert m2m.secret and m2m.client.redirect_uris == []
        assert m2m.client.grant_types == ["client_credentials"]

        jwt_client = clients.create(
            name="JWT", redirect_uris=CB, auth_method="private_key_jwt", jwks=public_jwks()
        )
        assert jwt_client.secret is None and jwt_client.client.secret_digest is None
        implied = clients.create(name="JWT implied", redirect_uris=CB, jwks=public_jwks())
        assert implied.client.token_endpoint_auth_method == "private_key_jwt"

        extra = clients.create(name="Linking", redirect_uris=CB, scopes=["openid", "linking:read"])
        assert extra.client.scopes == ["openid", "linking:read"]

        default = clients.create(name="Defaults", redirect_uris=CB + CB)
        assert default.client.redirect_uris == CB  # duplicates collapsed
        assert default.client.grant_types == ["authorization_code", "refresh_token"]
        assert "openid" in default.client.scopes

        listed = stored_client_ids(live)
        for made in (m2m, jwt_client, implied, extra, default):
            assert made.client.client_id in listed
        assert len(set(listed)) == len(listed) == 5


def test_client_id_must_be_unique(live):
    with live.ctx():
        clients = live.services.clients
        clients.create(name="Fixed", redirect_uris=CB, client_id="fixed-id")
        with pytest.raises(ValidationError) as info:
            clients.create(name="Fixed again", redirect_uris=CB, client_id="fixed-id")
        assert info.value.field == "client_id"
        assert clients.require("fixed-id").name == "Fixed"


def test_generated_client_ids_never_read_as_command_line_options():
    """token_urlsafe starts with ``-`` once in 64 draws; `idp clients delete -Pby…` then
    failed with "No such option '-P'" (seen in CI). 4,000 draws: a regression shows at once."""
    from idp.services.crypto import new_client_id

    ids = [new_client_id() for _ in range(4000)]
    assert not [i for i in ids if i.startswith("-")]
    assert len(set(ids)) == len(ids) and all(len(i) == 24 for i in ids)

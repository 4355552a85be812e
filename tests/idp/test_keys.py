"""Signing keys: creation, encryption at rest, rotation with overlap, and strict verification.

The signing keys table is shared by the tests of one worker (the fixtures keep it between
tests because key generation is slow), so these tests only rely on invariants: one active
key per algorithm, whatever was rotated before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from idp.adapters.sql.models import SigningKey
from idp.domain.errors import SigningKeyMissing
from idp.services.crypto import Sealer
from idp.services.keys import SUPPORTED_ALGS, KeyService, TokenInvalid

PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: dict) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def active_rows(live) -> dict[str, list[SigningKey]]:
    rows: dict[str, list[SigningKey]] = {}
    for row in live.services.keys.list_keys():
        if row.retired_at is None:
            rows.setdefault(row.alg, []).append(row)
    return rows


def active_kid(live, alg: str) -> str:
    (row,) = active_rows(live)[alg]
    return row.kid


def claims(live, ttl: int = 300, **extra) -> dict:
    now = int(live.clock())
    return {"iss": live.url, "sub": "user-1", "iat": now, "exp": now + ttl, **extra}


def header_of(token: str) -> dict:
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def secret_key(live) -> str:
    return live.app.extensions["idp.settings"].secret_key


# --- creation ---------------------------------------------------------------------------


def test_one_active_key_per_algorithm(live):
    with live.ctx():
        keys = live.services.keys
        assert keys.ensure_keys() == []  # already there: nothing new
        rows = active_rows(live)
        assert sorted(rows) == ["ES256", "RS256"]
        assert all(len(v) == 1 for v in rows.values()), rows
        assert keys.algorithms() == ["ES256", "RS256"]

        es, rs = rows["ES256"][0], rows["RS256"][0]
        assert es.public_jwk["kty"] == "EC" and es.public_jwk["crv"] == "P-256"
        assert rs.public_jwk["kty"] == "RSA"
        n = base64.urlsafe_b64decode(rs.public_jwk["n"] + "==")
        assert len(n) * 8 >= 2048
        for row in (es, rs):
            assert row.public_jwk["kid"] == row.kid
            assert row.public_jwk["alg"] == row.alg
            assert row.public_jwk["use"] == "sig"
            key_cls = ECKey if row.alg == "ES256" else RSAKey
            assert key_cls.import_key(row.public_jwk).thumbprint() == row.kid


def test_ensure_keys_creates_a_missing_key(live):
    with live.ctx():
        keys = live.services.keys
        session = keys._db
        old = session.get(SigningKey, active_kid(live, "ES256"))
        now = int(live.clock())
        old.retired_at, old.publish_until = now, now + 600
        session.commit()

        created = keys.ensure_keys()
        assert len(created) == 1
        assert active_kid(live, "ES256") == created[0]
        assert len(active_rows(live)["RS256"]) == 1
        assert keys.ensure_keys() == []
        assert header_of(keys.sign(claims(live), "ES256"))["kid"] == created[0]


def test_private_key_is_stored_encrypted(live):
    from idp.extensions import db

    with live.ctx():
        live.services.keys.ensure_keys()
        rows = db.session.execute(
            sa.text("SELECT kid, alg, private_jwk_enc, public_jwk FROM signing_keys")
        ).all()
        db.session.rollback()
        assert rows
        sealer = Sealer(secret_key(live))
        for kid, alg, enc, public in rows:
            private = json.loads(sealer.open(enc, kid))
            d = private["d"]
            assert len(d) >= 32
            # Not in the column, neither verbatim nor behind a mere base64 layer.
            assert d not in enc
            assert '"d"' not in enc
            assert d.encode() not in base64.urlsafe_b64decode(enc.encode())
            with pytest.raises(ValueError):
                json.loads(enc)
            # Nor in the published column.
            public_text = public if isinstance(public, str) else json.dumps(public)
            assert d not in public_text
            public_dict = json.loads(public_text)
            assert not set(PRIVATE_MEMBERS) & set(public_dict), public_dict
            # Bound to its kid and to the secret key.
            with pytest.raises(InvalidTag):
                sealer.open(enc, kid + "x")
            with pytest.raises(InvalidTag):
                Sealer(secret_key(live) + "-other").open(enc, kid)


def test_jwks_publishes_public_keys_only(live):
    with live.ctx():
        jwks = live.services.keys.jwks()
        assert jwks["keys"]
        kids = {k["kid"] for k in jwks["keys"]}
        for alg in SUPPORTED_ALGS:
            assert active_kid(live, alg) in kids
        for key in jwks["keys"]:
            assert not set(PRIVATE_MEMBERS) & set(key), key
            assert key["use"] == "sig"
            assert key["alg"] in SUPPORTED_ALGS


# --- rotation ---------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "RS256"])
def test_rotation_overlap_and_retirement(live, alg):
    with live.ctx():
        keys = live.services.keys
        old = active_kid(live, alg)
        other = "RS256" if alg == "ES256" else "ES256"
        other_kid = active_kid(live, other)
        before = keys.sign(claims(live), alg)
        assert header_of(before)["kid"] == old

        new = keys.rotate(alg)
        assert new != old
        assert active_kid(live, alg) == new
        assert active_kid(live, other) == other_kid  # the other algorithm is untouched
        # Published at once, but signing only once every cache has had time to see it.
        assert {old, new} <= {k["kid"] for k in keys.jwks()["keys"]}
        assert header_of(keys.sign(claims(live), alg))["kid"] == old
        live.clock.advance(keys.propagation_delay)
        keys.invalidate()

        after = keys.sign(claims(live), alg)
        assert header_of(after) == {"alg": alg, "kid": new, "typ": "JWT"}

        kids = {k["kid"] for k in keys.jwks()["keys"]}
        assert {old, new} <= kids
        # A token signed before the rotation still verifies.
        assert keys.verify(before, "JWT")["sub"] == "user-1"
        assert keys.verify(after, "JWT")["sub"] == "user-1"

        retired = keys._db.get(SigningKey, old)
        keys._db.refresh(retired)
        assert retired.retired_at is not None
        # Published at least as long as any token it signed can live (+ replica cache lag).
        assert retired.publish_until >= retired.retired_at + 600
        publish_until = retired.publish_until

        live.clock.advance(publish_until - live.clock() - 5)
        keys.invalidate()
        assert old in {k["kid"] for k in keys.jwks()["keys"]}

        live.clock.advance(10)
        keys.invalidate()
        kids = {k["kid"] for k in keys.jwks()["keys"]}
        assert old not in kids
        assert new in kids and other_kid in kids
        with pytest.raises(TokenInvalid):
            keys.verify(before, "JWT", check_expiry=False)


def test_emergency_rotation_signs_at_once(live):
    with live.ctx():
        keys = live.services.keys
        old = active_kid(live, "ES256")
        new = keys.rotate("ES256", activate_in=0)
        token = keys.sign(claims(live), "ES256")
        assert header_of(token)["kid"] == new != old
        assert old in {k["kid"] for k in keys.jwks()["keys"]}  # its tokens still verify


def test_rotate_refuses_unknown_algorithm(live):
    with live.ctx(), pytest.raises(ValueError):
        live.services.keys.rotate("HS256")


def test_other_replica_picks_up_a_rotation(live):
    """A second KeyService (another replica) rotates; within the cache lifetime this one
    signs with the new key, and tokens its stale cache signed still verify there."""
    from idp.extensions import db

    with live.ctx():
        mine = live.services.keys
        stale = mine.sign(claims(live), "ES256")
        replica = KeyService(db.session, Sealer(secret_key(live)), 600, clock=live.clock)
        new = replica.rotate("ES256")
        live.clock.advance(replica.propagation_delay + 31)
        assert header_of(mine.sign(claims(live), "ES256"))["kid"] == new
        assert replica.verify(stale, "JWT")["sub"] == "user-1"


# --- verification -----------------------------------------------------------------------


def test_verify_accepts_own_tokens_and_checks_typ(live):
    with live.ctx():
        keys = live.services.keys
        token = keys.sign(claims(live, sid="s1"), "ES256", typ="logout+jwt")
        assert keys.verify(token, "logout+jwt")["sid"] == "s1"
        assert keys.verify(token, "Logout+JWT")["sid"] == "s1"  # media types are case-blind
        assert keys.verify(token, None)["sid"] == "s1"
        with pytest.raises(TokenInvalid):
            keys.verify(token, "JWT")
        with pytest.raises(TokenInvalid):
            keys.verify(keys.sign(claims(live), "RS256"), "at+jwt")


def test_verify_refuses_alg_none(live):
    with live.ctx():
        kid = active_kid(live, "ES256")
        body = b64json(claims(live))
        for none in ("none", "None", "NONE"):
            for header in ({"alg": none, "kid": kid, "typ": "JWT"}, {"alg": none}):
                token = f"{b64json(header)}.{body}."
                with pytest.raises(TokenInvalid):
                    live.services.keys.verify(token, "JWT")
                with pytest.raises(TokenInvalid):
                    live.services.keys.verify(token, None, check_expiry=False)


def test_verify_refuses_hs256_keyed_with_the_public_key(live):
    """The RS/ES -> HS confusion attack: HMAC keyed with the published key's bytes."""
    with live.ctx():
        keys = live.services.keys
        body = b64json(claims(live))
        for row in active_rows(live).values():
            public = row[0].public_jwk
            key_cls = ECKey if public["kty"] == "EC" else RSAKey
            imported = key_cls.import_key(public)
            candidates = [
                imported.as_pem(private=False),
                json.dumps(public).encode(),
                json.dumps(public, separators=(",", ":")).encode(),
            ]
            for secret in candidates:
                head = b64json({"alg": "HS256", "kid": row[0].kid, "typ": "JWT"})
                mac = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
                with pytest.raises(TokenInvalid):
                    keys.verify(f"{head}.{body}.{b64url(mac)}", "JWT")


def test_verify_refuses_a_foreign_key_with_our_kid(live):
    with live.ctx():
        kid = active_kid(live, "ES256")
        foreign = ECKey.generate_key("P-256")
        token = jwt.encode({"alg": "ES256", "kid": kid, "typ": "JWT"}, claims(live), foreign)
        with pytest.raises(TokenInvalid):
            live.services.keys.verify(token, "JWT")


def test_verify_refuses_tampering(live):
    with live.ctx():
        keys = live.services.keys
        token = keys.sign(claims(live), "ES256")
        head, _body, sig = token.split(".")
        forged = f"{head}.{b64json(claims(live, sub='admin'))}.{sig}"
        with pytest.raises(TokenInvalid):
            keys.verify(forged, "JWT")
        for garbage in ("", "a.b", "a.b.c", token + "x", token.replace(".", "..", 1)):
            with pytest.raises(TokenInvalid):
                keys.verify(garbage, "JWT")


def test_verify_refuses_expired_tokens(live):
    with live.ctx():
        keys = live.services.keys
        now = int(live.clock())
        # Well past any clock-skew leeway.
        expired = keys.sign(claims(live) | {"iat": now - 120, "exp": now - 60}, "ES256")
        with pytest.raises(TokenInvalid):
            keys.verify(expired, "JWT")
        # The signature itself is fine: only the expiry check refuses it.
        assert keys.verify(expired, "JWT", check_expiry=False)["exp"] == now - 60

        no_exp = {k: v for k, v in claims(live).items() if k != "exp"}
        with pytest.raises(TokenInvalid):
            keys.verify(keys.sign(no_exp, "ES256"), "JWT")

        fresh = keys.sign(claims(live, ttl=60), "RS256")
        assert keys.verify(fresh, "JWT")["sub"] == "user-1"
        live.clock.advance(60 + 30)
        keys.invalidate()
        with pytest.raises(TokenInvalid):
            keys.verify(fresh, "JWT")


def test_verify_checks_the_issuer_when_asked(live):
    with live.ctx():
        keys = live.services.keys
        token = keys.sign(claims(live), "ES256")
        assert keys.verify(token, "JWT", issuer=live.url)["iss"] == live.url
        with pytest.raises(TokenInvalid):
            keys.verify(token, "JWT", issuer="https://evil.example")


def test_sign_refuses_an_algorithm_without_key(live):
    with live.ctx(), pytest.raises(SigningKeyMissing):
        live.services.keys.sign(claims(live), "HS256")


# --- the cached view ----------------------------------------------------------------------


def test_private_keys_are_parsed_once_per_kid(live, monkeypatch):
    """Importing an RSA private key costs tens of ms of CPU: a reload of the expired view
    (every cache period, on every replica) re-reads the rows but parses only new kids."""
    from idp.extensions import db

    parsed: list[str] = []
    for cls in (ECKey, RSAKey):
        original = cls.import_key.__func__

        def counting(klass, value, parameters=None, password=None, original=original):
            if isinstance(value, dict) and "d" in value:  # a private key
                parsed.append((parameters or {}).get("kid", "?"))
            return original(klass, value, parameters, password)

        monkeypatch.setattr(cls, "import_key", classmethod(counting))
    with live.ctx():
        keys = KeyService(db.session, Sealer(secret_key(live)), 600, clock=live.clock)
        first = {alg: header_of(keys.sign(claims(live), alg))["kid"] for alg in SUPPORTED_ALGS}
        assert sorted(parsed) == sorted(first.values())
        for _ in range(3):
            live.clock.advance(31)  # past the 30 s view: reloaded from the database
            for alg in SUPPORTED_ALGS:
                assert header_of(keys.sign(claims(live), alg))["kid"] == first[alg]
        assert sorted(parsed) == sorted(first.values())
        new = keys.rotate("ES256", activate_in=0)
        assert header_of(keys.sign(claims(live), "ES256"))["kid"] == new
        assert parsed.count(new) == 1 and len(parsed) == len(first) + 1


def test_an_expired_view_is_reloaded_by_one_thread(live, monkeypatch):
    """While one request reloads the expired view, the others sign with the previous one
    instead of each reading and parsing the keys again (a thundering herd on every replica)."""
    import threading

    from idp.extensions import db

    with live.ctx():
        keys = KeyService(db.session, Sealer(secret_key(live)), 600, clock=live.clock)
        kid = header_of(keys.sign(claims(live), "ES256"))["kid"]
        live.clock.advance(31)
        entered, release = threading.Event(), threading.Event()
        reloads = []
        original = keys._reload_view

        def slow_reload():
            reloads.append(threading.current_thread().name)
            entered.set()
            assert release.wait(10)
            return original()

        monkeypatch.setattr(keys, "_reload_view", slow_reload)
        results: list[str] = []

        def sign_in_thread():
            with live.ctx():
                results.append(header_of(keys.sign(claims(live), "ES256"))["kid"])

        reloader = threading.Thread(target=sign_in_thread, name="reloader")
        reloader.start()
        assert entered.wait(10)
        # The view is expired and being reloaded: other threads do not wait for it.
        others = [threading.Thread(target=sign_in_thread) for _ in range(3)]
        for thread in others:
            thread.start()
        for thread in others:
            thread.join(10)
        assert results == [kid, kid, kid]
        release.set()
        reloader.join(10)
        assert results == [kid] * 4 and reloads == ["reloader"]

"""Scale-out proof (issue 11): two IdP processes on different ports share only PostgreSQL and
Redis (a schema and a key prefix of their own), as replicas behind a load balancer without
sticky sessions do.

* A person signs in on one replica and continues the code flow, the refresh, userinfo and the
  logout on the other; the session ended on one is ended on both.
* Failed sign-ins lock an account and throttle an address whichever replica they reach.
* A key rotated (``idp keys rotate --now``, run beside replica A) is published and used for
  signing by replica B within :data:`KEY_BOUND` seconds: the key cache of each replica
  (``KeyService``, 30 s) is the documented bound, asserted with a margin.
* A client changed beside replica A is seen by replica B within :data:`CLIENT_BOUND` seconds
  (the brief's bound for per-replica caches with cross-replica invalidation).

Each bound is asserted by polling, never by timing: the test passes as soon as the change shows.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from idp import create_app
from idp.adapters.store_redis import RedisStore
from idp.config import load_settings
from tests.conftest import REDIS_URL, _reset, base_env
from tests.processes import free_port, wait_until
from tests.support import (
    PASSWORD,
    Clock,
    Live,
    csrf_of,
    make_client,
    make_user,
    pkce_pair,
)

ROOT = Path(__file__).resolve().parents[2]
KEY_BOUND = 35.0  # KeyService's cache (30 s) plus a margin
CLIENT_BOUND = 5.0
GENERIC_FAILURE = "Неверный логин или пароль"


class Replica:
    def __init__(self, name: str, env: dict, port: int, log: Path) -> None:
        self.name, self.url, self.log = name, f"http://127.0.0.1:{port}", log
        self._out = log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "idp.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
        )

    def ready(self) -> bool:
        assert self.proc.poll() is None, self.log.read_text()
        try:
            return requests.get(f"{self.url}/healthz", timeout=5).status_code == 200
        except requests.ConnectionError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._out.close()


@pytest.fixture
def replicas(databases, worker, tmp_path):
    """Replicas A and B (``idp serve``) on PostgreSQL + Redis, the issuer of both being the
    load balancer's address; plus an in-process app on the same storage for factories."""
    url = databases["pg-redis"]
    _reset(url)
    prefix = f"idp-scale:{worker}:"
    RedisStore(REDIS_URL, prefix=prefix).clear()
    ports = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("IDP_")}
    env.update(base_env(url, tmp_path))
    env.update(
        IDP_ISSUER=f"http://127.0.0.1:{ports[0]}",
        IDP_REDIS_URL=REDIS_URL,
        IDP_REDIS_PREFIX=prefix,
        IDP_LOGIN_MAX_FAILURES="3",
        IDP_ADDRESS_MAX_FAILURES="4",
        IDP_TRUSTED_PROXIES="1",
    )
    started = [
        Replica(name, env, port, tmp_path / f"{name}.log") for name, port in zip("AB", ports)
    ]
    app = create_app(load_settings(env))
    try:
        for replica in started:
            wait_until(replica.ready, 60, f"replica {replica.name} to answer")
        yield started[0], started[1], Live(started[0].url, app, Clock(), profile="pg-redis"), env
    finally:
        for replica in started:
            replica.stop()
        with app.app_context():
            from idp.extensions import db

            db.session.remove()
            db.engine.dispose()
        RedisStore(REDIS_URL, prefix=prefix).clear()


class Person(requests.Session):
    """A browser behind the load balancer: its own address (X-Forwarded-For, one trusted
    hop), cookies for 127.0.0.1 whatever the port — as one host name would be."""

    def __init__(self) -> None:
        super().__init__()
        self.headers["X-Forwarded-For"] = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.9"


def on(replica: Replica, location: str) -> str:
    """The same path and query, sent to ``replica`` (what the load balancer may do)."""
    parts = urlsplit(location)
    return f"{replica.url}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def login(person: Person, replica: Replica, login_name: str, password: str, interaction=None):
    page = person.get(
        f"{replica.url}/login", params={"interaction": interaction} if interaction else None
    )
    data = {"csrf_token": csrf_of(page.text), "login": login_name, "password": password}
    if interaction:
        data["interaction"] = interaction
    return person.post(f"{replica.url}/login", data=data, allow_redirects=False)


def authorize(client, challenge: str, **extra) -> str:
    query = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": client.redirect_uri,
        "scope": "openid offline_access",
        "state": secrets.token_urlsafe(8),
        "nonce": secrets.token_urlsafe(8),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return "/authorize?" + urlencode(query)


def follow(person: Person, replicas: list[Replica], response, client):
    """Follow the IdP's redirects, each hop on the next replica in turn; return the redirect
    to the client."""
    for hop in range(10):
        location = response.headers["Location"]
        if location.startswith(client.redirect_uri):
            return location
        response = person.get(on(replicas[hop % 2], location), allow_redirects=False)
        assert response.status_code in (302, 303), (response.status_code, response.text[:300])
    raise AssertionError("redirect loop")


def kid_of(jwt: str) -> str:
    head = jwt.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"]


def test_sign_in_on_one_replica_continue_on_the_other(replicas):
    a, b, live, _env = replicas
    _sub, name = make_user(live)
    client = make_client(live, scopes=["openid", "offline_access"])
    person = Person()
    verifier, challenge = pkce_pair()

    # /authorize on A sends the person to the login page; the login itself is posted to B.
    started = person.get(a.url + authorize(client, challenge), allow_redirects=False)
    assert started.status_code in (302, 303)
    interaction = parse_qs(urlsplit(started.headers["Location"]).query)["interaction"][0]
    signed_in = login(person, b, name, PASSWORD, interaction)
    assert signed_in.status_code == 303, signed_in.text[:300]
    # The resume and the consent-free code come from A, then B, in turn.
    callback = follow(person, [a, b], signed_in, client)
    code = parse_qs(urlsplit(callback).query)["code"][0]

    auth = (client.client_id, client.secret)
    token = requests.post(
        f"{a.url}/token",
        auth=auth,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": client.redirect_uri,
            "code_verifier": verifier,
        },
        timeout=10,
    )
    assert token.status_code == 200, token.text
    refreshed = requests.post(
        f"{b.url}/token",
        auth=auth,
        data={"grant_type": "refresh_token", "refresh_token": token.json()["refresh_token"]},
        timeout=10,
    )
    assert refreshed.status_code == 200, refreshed.text
    bearer = {"Authorization": f"Bearer {refreshed.json()['access_token']}"}
    assert requests.get(f"{a.url}/userinfo", headers=bearer, timeout=10).status_code == 200

    # Logout on B with the ID token minted by A's refresh partner; the session ends on A too.
    logout = person.get(
        f"{b.url}/logout",
        params={"id_token_hint": refreshed.json()["id_token"]},
        allow_redirects=False,
    )
    assert logout.status_code == 303, logout.text[:300]
    again = person.get(
        a.url + authorize(client, pkce_pair()[1], prompt="none"), allow_redirects=False
    )
    assert "error=login_required" in again.headers["Location"], again.headers["Location"]
    # The code is spent everywhere: B refuses it too (and, RFC 6749 §4.1.2, revokes what
    # it was exchanged for — so this comes last).
    replay = requests.post(
        f"{b.url}/token",
        auth=auth,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": client.redirect_uri,
            "code_verifier": verifier,
        },
        timeout=10,
    )
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"


def test_lockouts_and_rate_limits_count_across_replicas(replicas):
    a, b, live, _env = replicas
    _sub, name = make_user(live)
    # Three failures, alternating: the third locks the account (IDP_LOGIN_MAX_FAILURES=3).
    for replica in (a, b, a):
        failed = login(Person(), replica, name, "чужой-пароль")
        assert failed.status_code == 200 and GENERIC_FAILURE in failed.text
    # The right password is refused on B now, exactly like a wrong one.
    locked = login(Person(), b, name, PASSWORD)
    assert locked.status_code == 200 and GENERIC_FAILURE in locked.text

    # One address, four failures spread over both (IDP_ADDRESS_MAX_FAILURES=4): then 429 on
    # either, whatever account it names.
    sprayer = Person()
    for replica in (a, b, a, b):
        unknown = f"+7999{secrets.randbelow(10_000_000):07d}"
        assert login(sprayer, replica, unknown, "Пароль-123456").status_code == 200
    for replica in (a, b):
        refused = login(sprayer, replica, name, PASSWORD)
        assert refused.status_code == 429, refused.status_code
        assert int(refused.headers["Retry-After"]) > 0


def _client_credentials(replica: Replica, client) -> requests.Response:
    return requests.post(
        f"{replica.url}/token",
        auth=(client.client_id, client.secret),
        data={
            "grant_type": "client_credentials",
            "scope": "linking:read",
            "resource": "urn:elk:linking-service",
        },
        timeout=10,
    )


def test_key_rotation_on_one_replica_is_seen_by_the_other(replicas):
    a, b, live, env = replicas
    service = make_client(
        live, grant_types=["client_credentials"], redirect_uris=[], scopes=["linking:read"]
    )
    before = _client_credentials(b, service)
    assert before.status_code == 200, before.text
    old_kid = kid_of(before.json()["access_token"])
    assert requests.get(f"{b.url}/jwks.json", timeout=10).ok  # B's key cache is warm

    rotated = subprocess.run(
        [sys.executable, "-m", "idp.cli", "keys", "rotate", "--alg", "ES256", "--now"],
        cwd=ROOT,
        env={**env, "IDP_ISSUER": a.url},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    new_kid = json.loads(rotated.stdout.strip().splitlines()[-1])["kid"]
    assert new_kid != old_kid

    def published(replica):
        kids = {
            k["kid"] for k in requests.get(f"{replica.url}/jwks.json", timeout=10).json()["keys"]
        }
        return new_kid in kids and old_kid in kids  # the old key stays for its tokens

    for replica in (a, b):
        wait_until(lambda r=replica: published(r), KEY_BOUND, f"{replica.name} to publish it")

    def signs_with_new_key():
        response = _client_credentials(b, service)
        return response.ok and kid_of(response.json()["access_token"]) == new_kid

    wait_until(signs_with_new_key, KEY_BOUND, "B to sign with the rotated key")
    # A token B signed with the new key is good on A; the old one still is too.
    fresh = _client_credentials(b, service).json()["access_token"]
    for token in (fresh, before.json()["access_token"]):
        introspected = requests.post(
            f"{a.url}/introspect",
            auth=(service.client_id, service.secret),
            data={"token": token},
            timeout=10,
        )
        assert introspected.json()["active"] is True


def test_a_client_changed_beside_one_replica_is_seen_by_the_other(replicas):
    """Its secret rotated as `idp clients rotate-secret` does beside replica A (the database,
    then the cache version in Redis): both replicas refuse the old secret and take the new
    one within CLIENT_BOUND, though both had the client in their caches."""
    a, b, live, _env = replicas
    client = make_client(live, scopes=["openid"])

    def authenticates(replica, secret):
        # A code that does not exist: 401 invalid_client when the secret is refused,
        # 400 invalid_grant once the client authenticated.
        response = requests.post(
            replica.url + "/token",
            data={
                "grant_type": "authorization_code",
                "code": "no-such-code",
                "redirect_uri": client.redirect_uri,
                "code_verifier": "v" * 43,
            },
            auth=(client.client_id, secret),
            timeout=10,
        )
        assert response.status_code in (400, 401), response.text
        return response.status_code == 400

    for replica in (a, b):  # both have used the client: any cache of it is warm
        assert authenticates(replica, client.secret)

    with live.ctx():
        new_secret = live.services.clients.rotate_secret(client.client_id, operator="test")
    started = time.monotonic()
    for replica in (b, a):
        wait_until(
            lambda r=replica: authenticates(r, new_secret) and not authenticates(r, client.secret),
            max(0.1, CLIENT_BOUND - (time.monotonic() - started)),
            f"replica {replica.name} to see the changed client",
        )

"""The eight scenarios of issue 10 and the limits' load, over loopback."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections import deque
from urllib.parse import parse_qs, urlencode, urlsplit

import grpc
import requests

from bench.grpc_empty import METHOD
from bench.load import Scenario
from bench.stack import LINKING_AUD, Stack

PASSWORD = "Bench-пароль-0123"
REDIRECT = "https://rp.example.com/cb"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
INTERACTION = re.compile(r'name="interaction" value="([^"]+)"')


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


class Fixtures:
    """Clients and a user, made through the IdP's own services on the bench database."""

    def __init__(self, stack: Stack) -> None:
        from idp import create_app
        from idp.config import load_settings

        self.url = stack.idp_url
        app = create_app(load_settings(stack.idp_env))
        with app.app_context():
            services = app.extensions["idp.services"]
            web = services.clients.create(
                name="Bench portal",
                redirect_uris=[REDIRECT],
                first_party=True,
                grant_types=["authorization_code", "refresh_token"],
                scopes=["openid", "profile", "email", "phone", "offline_access", "linking"],
            )
            service = services.clients.create(
                name="Bench service",
                grant_types=["client_credentials"],
                scopes=["linking:read"],
            )
            self.login = "+79990000001"
            user = services.users.create(
                login=self.login, password=PASSWORD, family_name="Петров", given_name="Иван"
            )
            self.subject = str(user.id)
            from idp.extensions import db

            db.session.remove()
            db.engine.dispose()
        self.web = (web.client.client_id, web.secret)
        self.service = (service.client.client_id, service.secret)

    # --- browser steps -----------------------------------------------------------------------

    def authorize_url(self, challenge: str, scope: str = "openid profile email phone") -> str:
        query = {
            "response_type": "code",
            "client_id": self.web[0],
            "redirect_uri": REDIRECT,
            "scope": scope,
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return f"{self.url}/authorize?{urlencode(query)}"

    def follow(self, http: requests.Session, response) -> requests.Response:
        for _ in range(10):
            if response.status_code not in (301, 302, 303, 307, 308):
                return response
            location = response.headers["Location"]
            if location.startswith("/"):
                location = self.url + location
            if not location.startswith(self.url + "/"):
                return response
            response = http.get(location, allow_redirects=False)
        raise RuntimeError("redirect loop")

    def code_from(self, response) -> str:
        if response.status_code not in (302, 303):
            raise RuntimeError(f"no redirect to the client: {response.status_code}")
        query = parse_qs(urlsplit(response.headers["Location"]).query)
        if "code" not in query:
            raise RuntimeError(f"no code: {response.headers['Location'][:200]}")
        return query["code"][0]

    def sign_in(
        self,
        http: requests.Session,
        challenge: str,
        scope: str | None = None,
        login: str | None = None,
    ) -> str:
        """The password sign-in, from /authorize to the code (as ``login``, else the user's)."""
        url = self.authorize_url(challenge, **({"scope": scope} if scope else {}))
        page = self.follow(http, http.get(url, allow_redirects=False))
        if page.status_code != 200 or 'name="password"' not in page.text:
            raise RuntimeError(f"no login page: {page.status_code}")
        data = {"csrf_token": CSRF.search(page.text).group(1), "login": login or self.login}
        data["password"] = PASSWORD
        match = INTERACTION.search(page.text)
        if match:
            data["interaction"] = match.group(1)
        response = http.post(f"{self.url}/login", data=data, allow_redirects=False)
        return self.code_from(self.follow(http, response))

    def exchange(
        self, http: requests.Session, code: str, verifier: str, resource: str | None = None
    ) -> dict:
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT,
            "code_verifier": verifier,
        }
        if resource:
            data["resource"] = resource
        response = http.post(f"{self.url}/token", auth=self.web, data=data)
        if response.status_code != 200:
            raise RuntimeError(f"token: {response.status_code} {response.text[:200]}")
        return response.json()

    def service_token(self, http: requests.Session) -> str:
        response = http.post(
            f"{self.url}/token",
            auth=self.service,
            data={
                "grant_type": "client_credentials",
                "scope": "linking:read",
                "resource": LINKING_AUD,
            },
        )
        if response.status_code != 200:
            raise RuntimeError(f"token: {response.status_code} {response.text[:200]}")
        return response.json()["access_token"]


# --- 1 to 7: the IdP ---------------------------------------------------------------------------


class SignIn(Scenario):
    name, limit, target = "password sign-in", "argon2id verify", 0.8

    def __init__(self, fx: Fixtures) -> None:
        self.fx = fx

    def state(self, index):
        return requests.Session()

    def op(self, http):
        http.cookies.clear()
        return bool(self.fx.sign_in(http, pkce_pair()[1]))


class CodeExchange(Scenario):
    """Codes are made ahead by signed-in browsers (untimed); the window only exchanges them."""

    name, limit, target = "code + PKCE exchange", "hello world", 0.2

    def __init__(self, fx: Fixtures) -> None:
        self.fx = fx
        self.codes: deque = deque()
        self.browsers: list[requests.Session] = []

    def setup(self):
        self.browsers = [requests.Session() for _ in range(4)]
        for http in self.browsers:
            self.fx.sign_in(http, pkce_pair()[1])

    def state(self, index):
        return requests.Session()

    def stock(self, count):
        import concurrent.futures as cf

        def make(i):
            http = self.browsers[i % len(self.browsers)]
            verifier, challenge = pkce_pair()
            url = self.fx.authorize_url(challenge)
            code = self.fx.code_from(self.fx.follow(http, http.get(url, allow_redirects=False)))
            self.codes.append((code, verifier))

        missing = max(0, count - len(self.codes))
        with cf.ThreadPoolExecutor(len(self.browsers)) as pool:
            list(pool.map(make, range(missing)))

    def op(self, http):
        try:
            code, verifier = self.codes.popleft()
        except IndexError:
            return None
        return "access_token" in self.fx.exchange(http, code, verifier)


class Refresh(Scenario):
    """Each thread chains its own newest refresh token (rotation on every use)."""

    name, limit, target = "refresh (rotation)", "hello world", 0.15

    def __init__(self, fx: Fixtures) -> None:
        self.fx = fx

    def state(self, index):
        http = requests.Session()
        verifier, challenge = pkce_pair()
        code = self.fx.sign_in(http, challenge, scope="openid profile offline_access")
        tokens = self.fx.exchange(http, code, verifier)
        return {"http": http, "refresh": tokens["refresh_token"]}

    def op(self, state):
        response = state["http"].post(
            f"{self.fx.url}/token",
            auth=self.fx.web,
            data={"grant_type": "refresh_token", "refresh_token": state["refresh"]},
        )
        if response.status_code != 200:
            raise RuntimeError(f"refresh: {response.status_code} {response.text[:200]}")
        state["refresh"] = response.json()["refresh_token"]
        return True


class ClientCredentials(Scenario):
    name, limit, target = "client_credentials", "hello world", 0.4

    def __init__(self, fx: Fixtures) -> None:
        self.fx = fx

    def state(self, index):
        return requests.Session()

    def op(self, http):
        return bool(self.fx.service_token(http))


class _WithAccessToken(Scenario):
    def __init__(self, fx: Fixtures) -> None:
        self.fx = fx
        self.token = ""

    def setup(self):
        http = requests.Session()
        verifier, challenge = pkce_pair()
        self.token = self.fx.exchange(http, self.fx.sign_in(http, challenge), verifier)[
            "access_token"
        ]

    def state(self, index):
        return requests.Session()


class UserInfo(_WithAccessToken):
    name, limit, target = "userinfo", "hello world", 0.35

    def op(self, http):
        response = http.get(
            f"{self.fx.url}/userinfo", headers={"Authorization": f"Bearer {self.token}"}
        )
        return response.status_code == 200 and "sub" in response.json()


class Introspection(_WithAccessToken):
    name, limit, target = "introspection", "hello world", 0.35

    def op(self, http):
        response = http.post(
            f"{self.fx.url}/introspect", auth=self.fx.web, data={"token": self.token}
        )
        return response.status_code == 200 and response.json().get("active") is True


class Get(Scenario):
    """A GET answered 200 (discovery, JWKS, the hello world)."""

    def __init__(self, name: str, url: str, limit: str = "", target: float | None = None):
        self.name, self.url, self.limit, self.target = name, url, limit, target

    def state(self, index):
        return requests.Session()

    def op(self, http):
        return http.get(self.url).status_code == 200


# --- 8: the linking service ----------------------------------------------------------------------


class LinkingCall(Scenario):
    """ListIdentityAccounts with a service token. Warm: one token for every call, keys cached.
    Cold: a token never seen before on every call, and a linking service whose key cache
    expires every second (discovery and JWKS fetched again)."""

    limit, target = "empty grpc call", 0.7

    def __init__(self, fx: Fixtures, target: str, cold: bool) -> None:
        self.fx, self.address, self.cold = fx, target, cold
        self.name = "linking RPC, cold keys" if cold else "linking RPC, keys cached"
        self.target = None if cold else 0.7
        self.tokens: deque = deque()
        self.token = ""

    def setup(self):
        from elk_proto.linking.v1 import linking_pb2, linking_pb2_grpc

        self.pb, self.stub_cls = linking_pb2, linking_pb2_grpc.LinkingServiceStub
        self.token = self.fx.service_token(requests.Session())

    def stock(self, count):
        if not self.cold:
            return
        import concurrent.futures as cf

        missing = max(0, count - len(self.tokens))
        sessions = [requests.Session() for _ in range(4)]
        with cf.ThreadPoolExecutor(4) as pool:
            for token in pool.map(lambda i: self.fx.service_token(sessions[i % 4]), range(missing)):
                self.tokens.append(token)

    def state(self, index):
        return self.stub_cls(grpc.insecure_channel(self.address))

    def op(self, stub):
        if self.cold:
            try:
                token = self.tokens.popleft()
            except IndexError:
                return None
        else:
            token = self.token
        stub.ListIdentityAccounts(
            self.pb.ListIdentityAccountsRequest(subject=self.fx.subject),
            metadata=[("authorization", f"Bearer {token}")],
            timeout=10,
        )
        return True


class EmptyGrpc(Scenario):
    name = "empty grpc call"

    def __init__(self, target: str) -> None:
        self.address = target

    def state(self, index):
        channel = grpc.insecure_channel(self.address)
        return channel.unary_unary(METHOD)

    def op(self, call):
        return call(b"", timeout=10) == b""

"""Fixtures: a real linking service on a loopback port, trusting a real IdP (``live``).

The linking service uses the same storage profile as the IdP of the test: SQLite for
``embedded``, its own PostgreSQL schema for ``pg-redis``. Tokens are minted by the IdP's token
endpoint: the code flow for customers, client credentials for the IdP and internal callers.
"""

from __future__ import annotations

import grpc
import pytest
import requests
import sqlalchemy as sa
from argon2 import PasswordHasher

from elk_proto.linking.v1 import linking_pb2_grpc
from linking_service.adapters.billing_sql import SqlBillingDirectory
from linking_service.adapters.sql.db import create_schema, make_engine, make_sessions, transaction
from linking_service.adapters.sql.models import Base, BillingAccountRow, BillingServiceRow
from linking_service.auth import TokenVerifier
from linking_service.config import load_settings
from linking_service.server import build
from tests.conftest import PG_URL
from tests.support import (
    PASSWORD,
    callback_params,
    make_client,
    make_user,
    pkce_pair,
    sign_in_and_authorize,
)

AUDIENCE = "urn:elk:linking-service"
SECRET_KEY = "linking-test-secret-key-0123456789abcdef"
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@pytest.fixture(scope="session")
def linking_databases(worker, tmp_path_factory):
    schema = f"l_{worker}"
    admin = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://"))
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    var = tmp_path_factory.mktemp("linking")
    urls = {
        "embedded": f"sqlite:///{var / 'linking.sqlite3'}",
        "pg-redis": PG_URL.replace("postgresql://", "postgresql+psycopg://")
        + f"?options=-csearch_path%3D{schema}",
    }
    for url in urls.values():
        engine = make_engine(url)
        create_schema(engine)
        engine.dispose()
    yield urls
    with admin.begin() as conn:
        conn.execute(sa.text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    admin.dispose()


def _reset(url: str) -> None:
    engine = make_engine(url)
    names = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if url.startswith("postgresql"):
            conn.execute(sa.text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))
        else:
            for name in names:
                conn.execute(sa.text(f"DELETE FROM {name}"))
    engine.dispose()


class Linking:
    """A running linking service with helpers to seed billing data and mint tokens."""

    def __init__(self, idp, server, sessions, database_url=""):
        self.idp, self.server, self.sessions = idp, server, sessions
        self.database_url = database_url
        self.target = f"127.0.0.1:{server.port}"
        self.channel = grpc.insecure_channel(self.target)
        self.stub = linking_pb2_grpc.LinkingServiceStub(self.channel)
        self._service_clients = {}

    # --- billing data ---------------------------------------------------------------------

    def add_account(
        self,
        number,
        region="Пермский край",
        family="Петров",
        given="Иван",
        middle=None,
        phones=(),
        emails=(),
        status="active",
        internet=None,
        phone_service=None,
    ):
        """``internet=(login, password)``, ``phone_service=(number, pin)``."""
        with transaction(self.sessions) as db:
            db.add(
                BillingAccountRow(
                    number=number,
                    region=region,
                    family_name=family,
                    given_name=given,
                    middle_name=middle,
                    phones=list(phones),
                    emails=list(emails),
                    status=status,
                )
            )
            db.flush()
            if internet:
                db.add(
                    BillingServiceRow(
                        account_number=number,
                        kind="internet",
                        login=internet[0].lower(),
                        secret_hash=CHEAP.hash(internet[1]),
                    )
                )
            if phone_service:
                db.add(
                    BillingServiceRow(
                        account_number=number,
                        kind="phone",
                        phone=phone_service[0],
                        secret_hash=CHEAP.hash(phone_service[1]),
                    )
                )

    # --- tokens ---------------------------------------------------------------------------

    def service_token(self, scope: str, resource: str = AUDIENCE) -> str:
        if scope not in self._service_clients:
            self._service_clients[scope] = make_client(
                self.idp, grant_types=["client_credentials"], redirect_uris=[], scopes=[scope]
            )
        client = self._service_clients[scope]
        response = requests.post(
            f"{self.idp.url}/token",
            auth=(client.client_id, client.secret),
            data={"grant_type": "client_credentials", "scope": scope, "resource": resource},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def user_token(
        self,
        login: str | None = None,
        scope: str = "openid linking",
        resource: str | None = AUDIENCE,
    ) -> tuple[str, str]:
        """(sub, access token) of a signed-in customer, through the real code flow."""
        if login is None:
            sub, login = make_user(self.idp)
        else:
            sub = None
        if not hasattr(self, "_cabinet"):
            self._cabinet = make_client(self.idp, scopes=["openid", "profile", "linking"])
        client = self._cabinet
        verifier, challenge = pkce_pair()
        from tests.support import authorize_url

        url = authorize_url(self.idp, client, challenge, scope=scope)
        response = sign_in_and_authorize(requests.Session(), self.idp, url, login, PASSWORD)
        code = callback_params(response)["code"]
        data = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": client.redirect_uri,
            "code_verifier": verifier,
        }
        if resource:
            data["resource"] = resource
        token = requests.post(
            f"{self.idp.url}/token", auth=(client.client_id, client.secret), data=data, timeout=10
        ).json()
        access = token["access_token"]
        if sub is None:
            import jwt

            sub = jwt.decode(access, options={"verify_signature": False})["sub"]
        return sub, access

    @staticmethod
    def auth(token: str):
        return (("authorization", f"Bearer {token}"),)

    def close(self):
        self.channel.close()
        self.server.stop(0)


@pytest.fixture
def make_linking(live, profile, linking_databases):
    url = linking_databases[profile]
    _reset(url)
    started = []

    def factory(directory=None, clock=None, **env) -> Linking:
        """A server on ``url``; ``directory`` wraps the SQL one (a recording twin), ``clock``
        replaces the IdP's for the linking service alone."""
        settings = load_settings(
            {
                "LINKING_DATABASE_URL": url,
                "LINKING_LISTEN": "127.0.0.1:0",
                "LINKING_IDP_ISSUER": live.url,
                "LINKING_SECRET_KEY": SECRET_KEY,
                **env,
            }
        )
        engine = make_engine(url)
        sessions = make_sessions(engine)
        sql_directory = SqlBillingDirectory(sessions, CHEAP)
        verifier = TokenVerifier(live.url, AUDIENCE, ["ES256", "RS256"])
        server = build(
            settings.with_(events_poll_interval=0.05),
            directory=directory(sql_directory) if directory else sql_directory,
            verifier=verifier,
            clock=clock or live.clock,
        )
        linking = Linking(live, server, sessions, url)
        started.append((linking, engine))
        return linking

    yield factory
    for linking, engine in started:
        linking.close()
        engine.dispose()


@pytest.fixture
def linking(make_linking) -> Linking:
    return make_linking()

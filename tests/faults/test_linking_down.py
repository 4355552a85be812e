"""The linking service down mid-traffic: the cabinet says so on its pages, registration still
completes, and both recover when the service is back, without restarting the IdP."""

from __future__ import annotations

import requests

from idp.adapters.linking_grpc import GrpcLinkingClient
from idp.adapters.store_memory import MemoryStore
from linking_service.adapters.sql.db import create_schema, make_engine, make_sessions
from linking_service.billing_demo import load_demo
from tests.faults.servers import LinkingProcess
from tests.idp.test_registration_flow import last_code, step1
from tests.linking_service.conftest import CHEAP
from tests.support import PASSWORD, csrf_of, make_user, submit_login, wait_for

ACCOUNTS_DOWN = "сервис временно недоступен"
WIZARD_DOWN = "сейчас недоступен"


def mint(live):
    def token() -> str:
        with live.ctx():
            return live.services.tokens.service_token("linking:auto", "urn:elk:linking-service")

    return token


def signed_in(live, login: str) -> requests.Session:
    http = requests.Session()
    response = submit_login(http, live, http.get(f"{live.url}/login"), login, PASSWORD)
    assert response.status_code in (302, 303)
    return http


def register(live, phone: str, display: str) -> requests.Response:
    http = requests.Session()
    assert step1(http, live, display).status_code == 303
    csrf = csrf_of(http.get(f"{live.url}/register/confirm").text)
    confirmed = http.post(
        f"{live.url}/register/confirm",
        data={"csrf_token": csrf, "code": last_code(live, phone)},
        allow_redirects=False,
    )
    assert confirmed.headers["Location"].endswith("/register/password")
    return http.post(
        f"{live.url}/register/password",
        data={"csrf_token": csrf, "password": "Ночной-поезд-на-Пермь"},
        allow_redirects=False,
    )


def test_linking_service_down_then_back(start_idp, tmp_path):
    live = start_idp(f"sqlite:///{tmp_path / 'idp.sqlite3'}", MemoryStore())
    url = f"sqlite:///{tmp_path / 'linking.sqlite3'}"
    engine = make_engine(url)
    create_schema(engine)
    load_demo(make_sessions(engine), CHEAP)
    engine.dispose()
    linking = LinkingProcess(url, live.url)
    linking.start()
    client = GrpcLinkingClient(linking.target, mint(live), timeout=2)
    live.app.extensions["idp.linking"] = client
    try:
        _, login = make_user(live)
        http = signed_in(live, login)
        home = http.get(f"{live.url}/account")
        assert home.status_code == 200 and "accounts-error" not in home.text

        linking.kill()

        home = http.get(f"{live.url}/account")
        assert home.status_code == 200 and ACCOUNTS_DOWN in home.text  # the rest still works
        wizard = http.get(f"{live.url}/account/attach?new=1")
        step = http.post(
            f"{live.url}/account/attach",
            data={
                "csrf_token": csrf_of(wizard.text),
                "region": "Пермский край",
                "account_number": "159000000001",
            },
        )
        assert step.status_code == 503 and WIZARD_DOWN in step.text
        assert "Traceback" not in step.text
        done = register(live, "+79995554101", "8 (999) 555-41-01")
        assert done.status_code == 303  # the account exists; attachment can wait

        linking.start()

        wait_for(
            lambda: "accounts-error" not in http.get(f"{live.url}/account").text,
            30,
            "the cabinet to list accounts again",
        )
        assert register(live, "+79995554102", "8 (999) 555-41-02").status_code == 303
    finally:
        client.close()
        linking.close()

"""PostgreSQL restarted under traffic: requests fail cleanly (a 503 page or JSON, no stack
trace, never a 500) and the IdP's pool reconnects by itself afterwards."""

from __future__ import annotations

import threading

import requests

from idp.adapters.store_memory import MemoryStore
from tests.support import make_client, wait_for

UNAVAILABLE = "Сервис временно недоступен"


class Traffic:
    """Token requests (no database once the client is cached), introspection of the token
    (the deny list read on every one) and readiness probes in a loop, recording each status,
    until stopped."""

    def __init__(self, live, client) -> None:
        self._live, self._client = live, client
        self.seen: list[tuple[str, int, str]] = []
        self._token = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        http = requests.Session()
        while not self._stop.is_set():
            token = http.post(
                f"{self._live.url}/token",
                data={"grant_type": "client_credentials", "scope": "linking:auto"},
                auth=(self._client.client_id, self._client.secret),
                timeout=30,
            )
            self.seen.append(("token", token.status_code, token.text))
            if token.status_code == 200:
                self._token = token.json()["access_token"]
            introspected = http.post(
                f"{self._live.url}/introspect",
                data={"token": self._token},
                auth=(self._client.client_id, self._client.secret),
                timeout=30,
            )
            self.seen.append(("introspect", introspected.status_code, introspected.text))
            ready = http.get(f"{self._live.url}/readyz", timeout=30)
            self.seen.append(("readyz", ready.status_code, ready.text))

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(60)

    def count(self, status: int) -> int:
        return sum(1 for _, code, _ in self.seen if code == status)


def token(live, client) -> requests.Response:
    return requests.post(
        f"{live.url}/token",
        data={"grant_type": "client_credentials", "scope": "linking:auto"},
        auth=(client.client_id, client.secret),
        timeout=30,
    )


def test_postgres_restart_under_traffic(own_postgres, start_idp):
    live = start_idp(own_postgres.url, MemoryStore())
    client = make_client(
        live, grant_types=["client_credentials"], redirect_uris=[], scopes=["linking:auto"]
    )
    with Traffic(live, client) as traffic:
        wait_for(lambda: traffic.count(200) >= 4, 60, "traffic before the restart")
        own_postgres.stop()
        before = len(traffic.seen)
        wait_for(lambda: traffic.count(503) >= 4, 60, "requests refused while it is down")
        # A person's page while the database is away.
        page = requests.post(
            f"{live.url}/login", data={"login": "+79990000000", "password": "x"}, timeout=30
        )
        assert page.status_code in (403, 503)  # CSRF first: no session, no database needed
        own_postgres.start()
        wait_for(lambda: token(live, client).status_code == 200, 60, "a token after the restart")
        after = len(traffic.seen)
        wait_for(lambda: len(traffic.seen) >= after + 4, 60, "traffic after the restart")

    statuses = {code for _, code, _ in traffic.seen}
    assert statuses <= {200, 503}, statuses
    down = [(kind, text) for kind, code, text in traffic.seen[before:] if code == 503]
    assert {kind for kind, _ in down} >= {"readyz", "introspect"}
    for kind, text in down:
        assert "Traceback" not in text and "psycopg" not in text
        if kind == "readyz":
            assert "database" in text
        else:
            assert '"error"' in text  # JSON for the API
    # Recovered without a restart: the last requests all succeeded.
    assert [code for _, code, _ in traffic.seen[-4:]] == [200] * 4
    assert live.app.test_client().get("/readyz").status_code == 200

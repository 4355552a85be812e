"""Demo data for `make run`: one first-party client and one account, printed on start."""

from __future__ import annotations

import contextlib

from idp.domain.errors import Conflict

DEMO_CLIENT_NAME = "Демо-портал"
DEMO_CLIENT_ID = "demo-portal"
DEMO_SECRET = "demo-portal-secret-change-me"
DEMO_REDIRECT = "http://127.0.0.1:8080/callback"
DEMO_LOGIN = "+79990000001"
DEMO_EMAIL = "demo@example.ru"
DEMO_PASSWORD = "Демо-пароль-2026"


def ensure_demo(app) -> str:
    services = app.extensions["idp.services"]
    if services.clients.get(DEMO_CLIENT_ID) is None:
        services.clients.create(
            name=DEMO_CLIENT_NAME,
            redirect_uris=[DEMO_REDIRECT, "http://localhost:8080/callback"],
            first_party=True,
            post_logout_redirect_uris=["http://127.0.0.1:8080/"],
            scopes=["openid", "profile", "email", "phone", "offline_access", "linking"],
            client_id=DEMO_CLIENT_ID,
            secret=DEMO_SECRET,
        )
    with contextlib.suppress(Conflict):
        services.users.create(
            login=DEMO_LOGIN,
            family_name="Иванова",
            given_name="Мария",
            middle_name="Петровна",
            password=DEMO_PASSWORD,
        )
    return (
        "Demo data:\n"
        f"  client_id={DEMO_CLIENT_ID} client_secret={DEMO_SECRET}\n"
        f"  redirect_uri={DEMO_REDIRECT}\n"
        f"  user login={DEMO_LOGIN} (or 8 999 000-00-01) password={DEMO_PASSWORD}"
    )

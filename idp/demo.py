"""Demo data for `make run`: first-party clients (a bare one, and the two demo portals of
`demo_portals/`) and one account, printed on start. Safe to run again."""

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
DEMO_REGION = "Пермский край"

# The demo portals (demo_portals/config.py holds the same defaults; the IdP imports nothing
# of theirs). Fixed dev secrets, printed in the README: not secrets.
DEMO_PORTALS = (
    ("Интернет-магазин", "demo-shop", "demo-shop-secret-change-me", "http://127.0.0.1:8081"),
    ("Домашнее ТВ", "demo-tv", "demo-tv-secret-change-me", "http://127.0.0.1:8082"),
)


def portal_urls(shop: str | None = None, tv: str | None = None) -> dict[str, str]:
    """The demo portals' base URLs by client id: the defaults, or where `make run` serves
    them (``SHOP_PORT``, ``TV_PORT``)."""
    urls = {client_id: base for _, client_id, _, base in DEMO_PORTALS}
    for client_id, base in (("demo-shop", shop), ("demo-tv", tv)):
        if base:
            urls[client_id] = base.rstrip("/")
    return urls


def ensure_demo(app, portals: dict[str, str] | None = None) -> str:
    """``portals``: each demo portal's base URL by client id (:func:`portal_urls`); a portal
    client registered for another URL (an earlier run on other ports) is registered again."""
    services = app.extensions["idp.services"]
    portals = portals or portal_urls()
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
    for name, client_id, secret, _ in DEMO_PORTALS:
        base = portals[client_id]
        existing = services.clients.get(client_id)
        if existing is not None and list(existing.redirect_uris) != [f"{base}/callback"]:
            services.clients.delete(client_id, operator="idp demo")
            existing = None
        if existing is None:
            services.clients.create(
                name=name,
                redirect_uris=[f"{base}/callback"],
                first_party=True,
                post_logout_redirect_uris=[f"{base}/"],
                backchannel_logout_uri=f"{base}/backchannel-logout",
                scopes=["openid", "profile", "linking"],
                client_id=client_id,
                secret=secret,
            )
    with contextlib.suppress(Conflict):
        # As if she had registered: her billing account 159000000001 (the linking service's
        # demo data) is attached automatically — by `idp worker` once the linking service is
        # up, or at her first visit of the main page.
        services.users.create(
            login=DEMO_LOGIN,
            family_name="Иванова",
            given_name="Мария",
            middle_name="Петровна",
            password=DEMO_PASSWORD,
            region=DEMO_REGION,
            auto_attach=True,
        )
    return (
        "Demo data:\n"
        f"  client_id={DEMO_CLIENT_ID} client_secret={DEMO_SECRET}\n"
        f"  redirect_uri={DEMO_REDIRECT}\n"
        + "".join(
            f"  demo portal «{n}»: {portals[c]}/ (client_id={c})\n" for n, c, _, _ in DEMO_PORTALS
        )
        + f"  user login={DEMO_LOGIN} (or 8 999 000-00-01) password={DEMO_PASSWORD}"
    )

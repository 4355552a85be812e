"""The sign-in page in a real headless Chromium: labels, the error alert, «Запомнить меня», the
redirect back to the client, and an HttpOnly session cookie."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.conftest import RESULTS
from tests.support import authorize_url, make_client, make_user, pkce_pair

pytestmark = pytest.mark.browser


class Callback:
    """A relying party's redirect URI: records each query it receives and answers «ok»."""

    def __init__(self) -> None:
        self.queries: list[dict[str, str]] = []
        received = self.queries

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                parts = urlsplit(self.path)
                if parts.path != "/cb":  # e.g. the browser's /favicon.ico
                    self.send_error(404)
                    return
                query = parse_qs(parts.query)
                received.append({k: v[0] for k, v in query.items()})
                body = b"ok"
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/cb"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Callback:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.mark.parametrize("profile", ["embedded"], indirect=True)
def test_sign_in_page_in_a_real_browser(live, chromium):
    from playwright.sync_api import expect

    _, login = make_user(live)
    with Callback() as rp:
        client = make_client(live, name="Интернет-магазин", redirect_uris=[rp.url])
        _, challenge = pkce_pair()
        url = authorize_url(live, client, challenge, state="browser-state")

        context = chromium.new_context(locale="ru-RU", viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(url)
        expect(page.get_by_role("heading", name="Авторизация")).to_be_visible()
        expect(page).to_have_title("Авторизация — Ростелеком")
        expect(page.get_by_text("для входа в «Интернет-магазин»")).to_be_visible()
        RESULTS.mkdir(exist_ok=True)
        page.screenshot(path=str(RESULTS / "login.png"), full_page=True)

        # A wrong password first: the generic message, announced as an alert.
        page.get_by_label("Логин").fill(login)
        page.get_by_label("Пароль").fill("совсем-не-тот-пароль")
        page.get_by_role("button", name="Войти").click()
        alert = page.get_by_role("alert")
        expect(alert).to_have_text("Неверный логин или пароль.")
        expect(page.get_by_label("Логин")).to_have_value(login)
        expect(page.get_by_label("Логин")).to_have_attribute("aria-describedby", "login-error")
        expect(page.get_by_label("Пароль")).to_have_value("")
        page.screenshot(path=str(RESULTS / "login-error.png"), full_page=True)
        assert rp.queries == []

        # Then the right one, with «Запомнить меня».
        page.get_by_label("Пароль").fill("верный-пароль-42")
        page.get_by_label("Запомнить меня").check()
        with page.expect_navigation(url=f"{rp.url}?**"):
            page.get_by_role("button", name="Войти").click()
        expect(page.locator("body")).to_have_text("ok")

        assert len(rp.queries) == 1
        received = rp.queries[0]
        assert received["code"]
        assert received["iss"] == live.url
        assert received["state"] == "browser-state"
        assert page.url.startswith(rp.url + "?")

        cookies = {c["name"]: c for c in context.cookies(live.url)}
        sso = cookies["elk_sso"]
        assert sso["httpOnly"] is True
        assert sso["sameSite"] == "Lax"
        assert sso["path"] == "/"
        assert sso["expires"] > 0  # remembered: a persistent cookie, not a session one
        # scripts on the IdP's own pages cannot read it
        page.goto(f"{live.url}/login")
        assert "elk_sso" not in page.evaluate("document.cookie")
        context.close()

"""Serve the fakes: ``social-fakes`` for ``make run`` and :func:`start` for the tests.

Each fake serves all of its provider's hosts (OK's ``connect`` and ``api``, Yandex's ``oauth``
and ``login``, Facebook's ``www`` and ``graph``) under one base URL, so the IdP's
``IDP_SOCIAL_<PROVIDER>_*_URL`` settings are the only thing to change to reach the real
provider. ``social-fakes`` serves the six on one port under a prefix each
(``http://127.0.0.1:8090/vkid``, ``…/mail``, ``…/ok``, ``…/yandex``, ``…/google``,
``…/facebook``); the tests give each a port of its own. Credentials are test ones
(:func:`default_configs`); every fake accepts exactly the redirect URIs given, so
``--redirect-uri`` must name the IdP's callback.

    social-fakes [--host 127.0.0.1] [--port 8090] [--redirect-uri URL-WITH-{name}]
"""

from __future__ import annotations

import argparse
import importlib
import signal
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from werkzeug.exceptions import NotFound
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import BaseWSGIServer, make_server

from social_fakes.common import FakeConfig

NAMES = ("vkid", "mail", "ok", "yandex", "google", "facebook")
REGISTERED_SCOPES = {"yandex": "login:info login:email login:default_phone"}
DEFAULT_REDIRECT = "http://127.0.0.1:8000/login/social/{name}/callback"


def default_configs(redirect_uris: Iterable[str]) -> dict[str, FakeConfig]:
    """Each fake's registered application: ``client_id`` ``elk-<name>``, secret
    ``<name>-test-secret`` (OK's public key ``ok-test-public-key``). ``redirect_uris`` may
    hold ``{name}``, replaced by the provider's name."""
    templates = tuple(redirect_uris)
    return {
        name: FakeConfig(
            client_id=f"elk-{name}",
            client_secret=f"{name}-test-secret",
            application_key="ok-test-public-key" if name == "ok" else "",
            scope=REGISTERED_SCOPES.get(name, ""),
            redirect_uris=tuple(
                t.replace("{name}", each)
                for t in templates
                # Mail through VK ID is the VK ID application's additional sign-in method.
                for each in ((name, "mail") if name == "vkid" else (name,))
            ),
        )
        for name in NAMES
    }


def create_app(name: str, config: FakeConfig):
    return importlib.import_module(f"social_fakes.{name}").create_app(config)


@dataclass
class Running:
    """The fakes being served: their base URLs, configs and apps, by provider name."""

    urls: dict[str, str] = field(default_factory=dict)
    configs: dict[str, FakeConfig] = field(default_factory=dict)
    apps: dict = field(default_factory=dict)
    servers: list[BaseWSGIServer] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)

    def stop(self) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()
        for thread in self.threads:
            thread.join(5)


def start(
    configs: dict[str, FakeConfig], *, host: str = "127.0.0.1", port: int | None = None
) -> Running:
    """Serve the configs' fakes in threads (werkzeug, threaded): each on a free port of its
    own, or, given ``port``, all on that one under ``/<name>`` prefixes."""
    running = Running()
    for name, config in configs.items():
        running.configs[name], running.apps[name] = config, create_app(name, config)
    if port is None:
        for name, app in running.apps.items():
            running.urls[name] = _serve(running, host, 0, app)
    else:
        root = NotFound()
        base = _serve(running, host, port, DispatcherMiddleware(root, _prefixed(running.apps)))
        running.urls = {name: f"{base}/{name}" for name in running.apps}
    return running


def _prefixed(apps: dict) -> dict:
    return {f"/{name}": app for name, app in apps.items()}


def _serve(running: Running, host: str, port: int, app) -> str:
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.daemon = True
    thread.start()
    running.servers.append(server)
    running.threads.append(thread)
    return f"http://{host}:{server.server_port}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="social-fakes", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090, help="the six under /<name> here")
    parser.add_argument(
        "--redirect-uri",
        action="append",
        help=f"an accepted redirect URI, {{name}} = the provider (default {DEFAULT_REDIRECT})",
    )
    args = parser.parse_args(argv)
    configs = default_configs(args.redirect_uri or [DEFAULT_REDIRECT])
    running = start(configs, host=args.host, port=args.port)
    for name in NAMES:
        print(f"{name:9} {running.urls[name]}  client_id={configs[name].client_id}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    running.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Serve the fakes: ``social-fakes`` for ``make run`` and :func:`start` for the tests.

Each provider gets a port of its own (its fake serves all of the provider's hosts: OK's
``connect`` and ``api``, Yandex's ``oauth`` and ``login``, Facebook's ``www`` and ``graph``),
so the IdP's ``IDP_SOCIAL_<PROVIDER>_*_URL`` settings are the only thing to change to reach
the real provider. Credentials are test ones (:func:`default_configs`); every fake accepts
exactly the redirect URIs given, so ``--redirect-uri`` must name the IdP's callback.

    social-fakes [--host 127.0.0.1] [--port-base 8090] [--redirect-uri URL-WITH-{name}]
"""

from __future__ import annotations

import argparse
import importlib
import signal
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from werkzeug.serving import BaseWSGIServer, make_server

from social_fakes.common import FakeConfig

NAMES = ("vkid", "mail", "ok", "yandex", "facebook")
REGISTERED_SCOPES = {"yandex": "login:info login:email login:default_phone"}
DEFAULT_REDIRECT = "http://127.0.0.1:8000/social/{name}/callback"


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
    configs: dict[str, FakeConfig],
    *,
    host: str = "127.0.0.1",
    ports: dict[str, int] | None = None,
) -> Running:
    """Serve each config's fake in a thread (werkzeug, threaded) on its port (0: a free one)."""
    running = Running()
    for name, config in configs.items():
        app = create_app(name, config)
        server = make_server(host, (ports or {}).get(name, 0), app, threaded=True)
        thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        thread.start()
        running.urls[name] = f"http://{host}:{server.server_port}"
        running.configs[name], running.apps[name] = config, app
        running.servers.append(server)
        running.threads.append(thread)
    return running


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="social-fakes", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port-base", type=int, default=8090, help="vkid on this port, mail +1 … facebook +5"
    )
    parser.add_argument(
        "--redirect-uri",
        action="append",
        help=f"an accepted redirect URI, {{name}} = the provider (default {DEFAULT_REDIRECT})",
    )
    args = parser.parse_args(argv)
    configs = default_configs(args.redirect_uri or [DEFAULT_REDIRECT])
    ports = {name: args.port_base + n for n, name in enumerate(NAMES)}
    running = start(configs, host=args.host, ports=ports)
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

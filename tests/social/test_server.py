"""``social-fakes``: the six on one port under /<name> prefixes, as ``make run`` serves them;
the adapters reach them through the URL settings alone."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from idp.adapters.social import build_social_providers
from idp.config import load_settings
from idp.domain.social import PROVIDER_NAMES
from social_fakes import server
from tests.processes import free_port, wait_until
from tests.social.conftest import REDIRECT, ROLES, Round, person

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def one_port():
    running = server.start(server.default_configs([REDIRECT]), port=0)
    yield running
    running.stop()


def env_for(running) -> dict:
    env = {}
    for name in PROVIDER_NAMES:
        config, prefix = running.configs[name], f"IDP_SOCIAL_{name.upper()}_"
        env.update(
            {
                prefix + "ENABLED": "true",
                prefix + "CLIENT_ID": config.client_id,
                prefix + "CLIENT_SECRET": config.client_secret,
                prefix + "APPLICATION_KEY": config.application_key,
            }
        )
        for role in ROLES[name]:
            url = running.urls[name]
            if role == "discovery":
                url += "/.well-known/openid-configuration"
            env[f"{prefix}{role.upper()}_URL"] = url
    return env


def test_all_six_round_trip_under_prefixes(one_port, tmp_path):
    assert len({url.rsplit("/", 1)[0] for url in one_port.urls.values()}) == 1  # one port
    settings = load_settings({"IDP_VAR_DIR": str(tmp_path), **env_for(one_port)})
    providers = build_social_providers(settings)
    assert list(providers) == list(PROVIDER_NAMES)
    for name, provider in providers.items():
        attempt = Round(provider)
        profile = attempt.complete(person(attempt.url(), "olga"))
        assert (profile.provider, profile.subject, profile.given_name) == (name, "100002", "Ольга")


def test_the_console_entry_serves_and_stops_on_sigterm(tmp_path):
    port = free_port()
    process = subprocess.Popen(
        [str(BIN / "social-fakes"), "--port", str(port), "--redirect-uri", REDIRECT],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def answers() -> bool:
            try:
                url = f"http://127.0.0.1:{port}/google/.well-known/openid-configuration"
                return requests.get(url, timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(answers, 30, "social-fakes to answer")
        meta = requests.get(
            f"http://127.0.0.1:{port}/google/.well-known/openid-configuration", timeout=5
        ).json()
        assert meta["issuer"] == f"http://127.0.0.1:{port}/google"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
        assert "elk-vkid" in process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()

"""`idp linking-events` as a real command."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import base_env


def run(env, *args):
    return subprocess.run(
        [sys.executable, "-m", "idp.cli", "linking-events", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_needs_a_target_and_reports_an_unreachable_service(databases, tmp_path):
    env = {**base_env(databases["embedded"], tmp_path), "PATH": "/usr/bin:/bin"}
    missing = run(env, "--once")
    assert missing.returncode != 0 and "IDP_LINKING_TARGET" in missing.stderr
    down = run({**env, "IDP_LINKING_TARGET": "127.0.0.1:1"}, "--once", "--wait", "0.5")
    assert down.returncode != 0 and "linking service" in down.stderr
    assert "Traceback" not in down.stderr

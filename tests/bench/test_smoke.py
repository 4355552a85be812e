"""CI's smoke check of `make bench` (issue 10): every scenario and every limit runs against
real servers on PostgreSQL and Redis and completes with zero errors. No speed is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.bench
def test_every_scenario_completes_without_errors(tmp_path):
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--seconds", "1", "--out", str(out)],
        # Two workers boot faster than the default; the figures are not looked at.
        env={**os.environ, "IDP_WORKERS": "2"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    names = [r["name"] for r in report["scenarios"]]
    assert names == [
        "password sign-in",
        "code + PKCE exchange",
        "refresh (rotation)",
        "client_credentials",
        "userinfo",
        "introspection",
        "discovery",
        "JWKS",
        "linking RPC, keys cached",
        "linking RPC, cold keys",
    ]
    assert [r["name"] for r in report["limits"]] == [
        "argon2id verify",
        "ES256 sign + verify",
        "RS256 sign + verify",
        "hello world",
        "empty grpc call",
    ]
    for result in report["scenarios"] + report["limits"]:
        assert result["requests"] > 0, result
        assert result["errors"] == 0, result
    for result in report["scenarios"]:
        assert result["per_cpu_s"] > 0 and result["ratio"] is not None, result
    assert report["machine"]["cpus"] >= 1

"""CI's smoke check of `make soak` (issue 10): a few seconds of the mixed workload at a low
rate against real servers on PostgreSQL and Redis; every check passes and nothing fails.
Neither speed nor memory is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.bench
def test_a_short_soak_loses_nothing(tmp_path):
    out = tmp_path / "soak.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--seconds", "5", "--rate", "8", "--sample", "1"]
        + ["--out", str(out)],
        # Two workers boot faster than the default; the figures are not looked at.
        env={**os.environ, "IDP_WORKERS": "2"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["passed"] is True
    assert set(report["checks"]) == {
        "refresh tokens accounted for",
        "attachments recorded once",
        "registrations through the outbox",
        "no 5xx",
        "no failed operation",
    }
    assert all(check["ok"] for check in report["checks"].values()), report["checks"]
    # Every kind of operation ran, none failed.
    for name, op in report["operations"].items():
        assert op["ok"] > 0 and op["failed"] == 0, (name, op)
    assert report["checks"]["refresh tokens accounted for"]["issued"] > 0
    assert report["checks"]["attachments recorded once"]["attached"] > 0
    assert report["checks"]["registrations through the outbox"]["completed"] > 0
    # RSS was sampled for every server process.
    assert {"idp", "worker", "linking"} <= set(report["memory"]["roles"])

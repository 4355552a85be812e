"""The dashboard and the README speak of the metrics the services export, and of all of them:
a renamed metric cannot leave a panel empty or a README line stale."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram

import idp.adapters.metrics as idp_metrics
import linking_service.observability as linking_metrics

ROOT = Path(__file__).resolve().parents[2]
SUFFIXES = {Counter: ("_total",), Gauge: ("",), Histogram: ("_bucket", "_count", "_sum")}


def exported() -> dict[str, tuple[str, ...]]:
    """Each metric family name → the sample names it exposes."""
    found = {}
    for module in (idp_metrics, linking_metrics):
        for item in vars(module).values():
            for kind, suffixes in SUFFIXES.items():
                if isinstance(item, kind):
                    found[item._name] = tuple(item._name + s for s in suffixes)
    return found


def test_every_dashboard_query_names_an_exported_metric():
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "elk.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert exprs
    samples = {s for names in exported().values() for s in names}
    used = {m for e in exprs for m in re.findall(r"(?<!\$)\b(?:idp|linking)_[a-z_]+\b", e)}
    assert used <= samples, sorted(used - samples)
    charted = {family for family, names in exported().items() if set(names) & used}
    assert charted == set(exported()), sorted(set(exported()) - charted)


def test_the_readme_lists_every_metric():
    readme = (ROOT / "README.md").read_text()
    missing = [
        family
        for family, names in exported().items()
        if f"`{names[0] if names[0].endswith('_total') else family}`" not in readme
    ]
    assert not missing, missing

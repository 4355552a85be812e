"""Reading a real Prometheus exposition: scrape ``/metrics`` over HTTP and pick samples."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

_served: dict[str, int] = {}


def in_process_endpoint() -> str:
    """This test process's ``/metrics`` (the default registry, as ``idp serve`` and the
    linking service serve it), started once on a free loopback port."""
    if "port" not in _served:
        from idp.adapters.metrics import serve_metrics

        _served["port"] = serve_metrics(0, host="127.0.0.1")
    return f"http://127.0.0.1:{_served['port']}/metrics"


def scrape(url: str) -> str:
    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text[:300]
    assert response.headers["Content-Type"].startswith("text/plain")
    return response.text


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples named ``name`` whose labels include ``labels`` (0 if none)."""
    return sum(
        v
        for n, found, v in samples(text)
        if n == name and all(found.get(k) == want for k, want in labels.items())
    )


def present(text: str, name: str) -> bool:
    return any(n == name for n, _labels, _v in samples(text))

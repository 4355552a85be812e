"""README "Operations": the table of environment variables cannot drift from the code (one
row per variable some service reads, with the components that read it) nor from the
Kubernetes base (where each variable is set: ConfigMap, Secret or the default)."""

from __future__ import annotations

import re

import pytest

from tests.deploy.kustomize import pod_spec, render
from tests.deploy.support import DEPLOY, ROOT, known_vars

ROW = re.compile(r"^\| `([A-Z0-9_]+)` \| ([a-z, ]+) \| ([^|]+) \| ([^|]+) \|$")


@pytest.fixture(scope="module")
def operations() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("\n## Operations\n")
    return text[start : text.index("\n## ", start + 1)]


@pytest.fixture(scope="module")
def rows(operations) -> dict[str, tuple[set[str], str]]:
    section = operations[operations.index("### Every environment variable") :]
    section = section[: section.index("\n### ")]
    found: dict[str, tuple[set[str], str]] = {}
    for line in section.splitlines():
        match = ROW.match(line)
        if match:
            assert match[1] not in found, f"{match[1]} twice"
            found[match[1]] = (set(match[2].split(", ")), match[3].strip())
    return found


def test_every_variable_has_one_row_naming_who_reads_it(rows):
    known = known_vars()
    assert sorted(set(known) - set(rows)) == [], "variables missing from README's table"
    assert sorted(set(rows) - set(known)) == [], "README's table names variables nobody reads"
    for name, (readers, _) in rows.items():
        assert readers == known[name], name


def test_the_kubernetes_column_matches_the_base(rows):
    where: dict[str, str] = {}
    for resource in render(DEPLOY / "k8s/base"):
        if resource["kind"] == "ConfigMap":
            for key in resource["data"]:
                where[key] = f"ConfigMap `{resource['metadata']['name']}`"
        pod = pod_spec(resource)
        for container in pod["containers"] if pod else []:
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    where[item["name"]] = f"Secret `{ref['name']}`"
    for name, (_, column) in rows.items():
        assert column == where.get(name, "—"), name


def test_the_section_has_what_an_operator_needs(operations):
    assert "```mermaid" in operations
    for heading in ("Deploying to Kubernetes", "Scaling", "Rotating keys", "Backup and restore"):
        assert f"### {heading}" in operations

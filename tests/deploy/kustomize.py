"""A minimal kustomize, for the features deploy/k8s uses and no more: ``resources`` (files and
directories), ``namespace``, ``labels`` (metadata only), ``images`` and ``patches`` with a
path (strategic merge of a resource of the same kind and name). test_k8s.py compares it with
the real ``kubectl kustomize`` where that binary exists, and refuses any other field, so a
kustomization that grows a feature fails here instead of rendering something else."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}
# Lists merged item by item on their "name", as strategic merge patches do for these fields.
MERGED_BY_NAME = {"containers", "initContainers", "env", "ports", "volumes", "volumeMounts"}


def load_documents(path: Path) -> list[dict]:
    # Through JSON so that YAML aliases (`labels: *labels`) become copies, as in kustomize.
    return [json.loads(json.dumps(doc)) for doc in yaml.safe_load_all(path.read_text()) if doc]


def render(directory: Path) -> list[dict]:
    spec = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(spec) - SUPPORTED
    if unknown:
        raise NotImplementedError(f"{directory}: kustomization fields {sorted(unknown)}")
    resources: list[dict] = []
    for entry in spec.get("resources", []):
        target = (directory / entry).resolve()
        resources += render(target) if target.is_dir() else load_documents(target)
    for patch_entry in spec.get("patches", []):
        for patch in load_documents(directory / patch_entry["path"]):
            _apply_patch(resources, patch)
    for item in spec.get("labels", []):
        if set(item) - {"pairs"}:
            raise NotImplementedError(f"{directory}: labels options {sorted(item)}")
        for resource in resources:
            resource["metadata"].setdefault("labels", {}).update(item["pairs"])
    for image in spec.get("images", []):
        for resource in resources:
            for container in _containers(resource):
                if container["image"].split(":")[0] == image["name"]:
                    name = image.get("newName", image["name"])
                    container["image"] = f"{name}:{image['newTag']}" if "newTag" in image else name
    if "namespace" in spec:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource["metadata"]["namespace"] = spec["namespace"]
    return resources


def pod_spec(resource: dict) -> dict | None:
    """The pod template's spec of a workload, or None for other kinds."""
    spec = resource.get("spec", {})
    if resource["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    if resource["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"}:
        return spec["template"]["spec"]
    return None


def _containers(resource: dict) -> list[dict]:
    pod = pod_spec(resource)
    return [] if pod is None else pod.get("initContainers", []) + pod["containers"]


def _apply_patch(resources: list[dict], patch: dict) -> None:
    for resource in resources:
        same = resource["kind"] == patch["kind"]
        if same and resource["metadata"]["name"] == patch["metadata"]["name"]:
            _merge(resource, copy.deepcopy(patch))
            return
    raise LookupError(f"patch for a missing {patch['kind']}/{patch['metadata']['name']}")


def _merge(target: dict, patch: dict) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        elif key in MERGED_BY_NAME and isinstance(target.get(key), list):
            by_name = {item["name"]: item for item in target[key]}
            for item in value:
                if item["name"] in by_name:
                    _merge(by_name[item["name"]], item)
                else:
                    target[key].append(item)
        else:
            target[key] = value

"""The Kubernetes manifests (deploy/k8s): rendered like kustomize, valid against the
Kubernetes schemas, and consistent with the code they run: probes on real endpoints, every
variable one the settings read and enough for them to load in production, commands that
exist, non-root hardened pods, metrics ports private, the linking service reachable only by
the IdP and labelled internal namespaces."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

import grpc
import kubernetes_validate
import pytest
import yaml
from grpc_health.v1 import health_pb2, health_pb2_grpc

import idp.config
import linking_service.config
from idp import create_app
from linking_service.adapters.sql.db import create_schema, make_engine
from linking_service.server import WATCHDOG_MARGIN, build
from tests.conftest import base_env
from tests.deploy.kustomize import pod_spec, render
from tests.deploy.support import (
    ARRIVING,
    DEPLOY,
    GUNICORN_CONF,
    known_vars,
    missing_command,
    shell_commands,
)

OVERLAYS = {"base": DEPLOY / "k8s/base", "production": DEPLOY / "k8s/overlays/production"}
# The oldest Kubernetes the manifests are for (grpc probes are GA since 1.27) and the newest
# the schemas know.
VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
WORKLOADS = {"Deployment", "Job", "CronJob"}
METRICS_PORTS = {9100, 9101}
MONITORING = {"elk.rt.ru/monitoring": "true"}


@pytest.fixture(scope="module", params=sorted(OVERLAYS))
def overlay(request):
    return request.param


@pytest.fixture(scope="module")
def manifests(overlay) -> list[dict]:
    return render(OVERLAYS[overlay])


def _one(manifests, kind, name) -> dict:
    (found,) = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    return found


def _workloads(manifests):
    for resource in manifests:
        if resource["kind"] in WORKLOADS:
            yield resource, pod_spec(resource)


def _containers(manifests):
    for resource, pod in _workloads(manifests):
        for container in pod["containers"]:
            yield resource, container


def _config_maps(manifests) -> dict[str, dict]:
    return {m["metadata"]["name"]: m.get("data", {}) for m in manifests if m["kind"] == "ConfigMap"}


def _matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


@pytest.mark.skipif(
    not (shutil.which("kubectl") or shutil.which("kustomize")), reason="no kustomize binary"
)
def test_rendering_matches_kustomize(overlay, manifests):
    argv = ["kustomize", "build"] if shutil.which("kustomize") else ["kubectl", "kustomize"]
    out = subprocess.run([*argv, str(OVERLAYS[overlay])], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    real = [doc for doc in yaml.safe_load_all(out.stdout) if doc]

    def key(resource):
        return resource["kind"], resource["metadata"]["name"]

    assert sorted(manifests, key=key) == sorted(real, key=key)


@pytest.mark.parametrize("version", VERSIONS)
def test_valid_against_the_kubernetes_schemas(manifests, version):
    for resource in manifests:
        try:
            kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            name = f"{resource['kind']}/{resource['metadata']['name']}"
            pytest.fail(f"{name} on Kubernetes {version}: {exc.message} at {list(exc.path)}")


def test_what_the_platform_needs_is_there(manifests):
    kinds = {(m["kind"], m["metadata"]["name"]) for m in manifests}
    for expected in [
        ("Deployment", "idp-web"),
        ("Deployment", "idp-worker"),
        ("Deployment", "idp-linking-events"),
        ("Deployment", "linking-service"),
        ("Service", "idp"),
        ("Service", "linking-service"),
        ("HorizontalPodAutoscaler", "idp-web"),
        ("PodDisruptionBudget", "idp-web"),
        ("PodDisruptionBudget", "linking-service"),
        ("NetworkPolicy", "linking-service"),
        ("Job", "idp-migrate"),
        ("Job", "linking-migrate"),
        ("CronJob", "idp-purge"),
        ("CronJob", "linking-purge"),
        ("CronJob", "idp-keys-rotate"),
    ]:
        assert expected in kinds


def test_pods_run_as_non_root_with_nothing_to_spare(manifests):
    for resource, pod in _workloads(manifests):
        name = resource["metadata"]["name"]
        context = pod["securityContext"]
        assert context["runAsNonRoot"] is True, name
        assert context["runAsUser"] > 0 and context["runAsGroup"] > 0, name
        assert context["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            own = container["securityContext"]
            assert own["readOnlyRootFilesystem"] is True, name
            assert own["allowPrivilegeEscalation"] is False, name
            assert own["capabilities"]["drop"] == ["ALL"], name
            assert "add" not in own["capabilities"] and not own.get("privileged"), name
            assert "runAsUser" not in own or own["runAsUser"] > 0, name
            assert container["resources"]["requests"], name
            assert container["resources"]["limits"]["memory"], name
            # A read-only root needs a writable /tmp (gunicorn's worker heartbeat files).
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], name


def test_every_variable_is_one_the_services_read(manifests):
    known = known_vars()
    named = []
    for name, data in _config_maps(manifests).items():
        named += [(f"ConfigMap {name}", key) for key in data]
    for resource, container in _containers(manifests):
        where = f"{resource['kind']} {resource['metadata']['name']}"
        for item in container.get("env", []):
            named.append((where, item["name"]))
            ref = item.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] == item["name"], f"{where}: one key per variable, same name"
    unknown = [(where, name) for where, name in named if name not in known]
    assert not unknown, f"variables no service reads: {unknown}"


def _secret_value(name: str) -> str:
    if name.endswith("DATABASE_URL"):
        return "postgresql://svc:pw@db.internal:5432/elk"
    if name.endswith("REDIS_URL"):
        return "rediss://:pw@redis.internal:6380/0"
    return "s" * 48


def _environment(container, config_maps) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", _secret_value(item["name"]))
    return env


def test_each_container_has_what_its_settings_need_in_production(manifests):
    config_maps = _config_maps(manifests)
    for resource, container in _containers(manifests):
        env = _environment(container, config_maps)
        if "linking-service" in container["image"]:
            settings = linking_service.config.load_settings(env)
            assert settings.env == "production"
        else:
            settings = idp.config.load_settings(env)
            assert settings.env == "production" and settings.redis_url
            assert settings.issuer.startswith("https://")


def test_secrets_come_from_secrets(manifests):
    secret = {
        "IDP_SECRET_KEY",
        "IDP_DATABASE_URL",
        "IDP_REDIS_URL",
        "IDP_SMS_GATEWAY_PASSWORD",
        "IDP_SMS_GATEWAY_TOKEN",
        "IDP_SMTP_PASSWORD",
        "LINKING_SECRET_KEY",
        "LINKING_DATABASE_URL",
    }
    for name, data in _config_maps(manifests).items():
        assert not secret & set(data), f"ConfigMap {name} holds a secret"
    for _, container in _containers(manifests):
        for item in container.get("env", []):
            if item["name"] in secret:
                assert "secretKeyRef" in item["valueFrom"], item["name"]


def test_commands_exist(manifests):
    missing = set()
    for _, container in _containers(manifests):
        for argv in shell_commands(container.get("command", ["gunicorn"])):
            missing.add(missing_command(argv))
    assert missing - {None} <= ARRIVING


@pytest.fixture(scope="module")
def idp_routes(tmp_path_factory) -> set[str]:
    var = tmp_path_factory.mktemp("idp")
    app = create_app(idp.config.load_settings(base_env(f"sqlite:///{var / 'idp.db'}", var)))
    return {rule.rule for rule in app.url_map.iter_rules() if "GET" in rule.methods}


def _port(container, ref) -> int:
    if isinstance(ref, int):
        return ref
    (port,) = [p["containerPort"] for p in container["ports"] if p["name"] == ref]
    return port


def test_idp_probes_ask_real_endpoints(manifests, idp_routes):
    deployment = _one(manifests, "Deployment", "idp-web")
    (container,) = pod_spec(deployment)["containers"]
    probes = {kind: container[f"{kind}Probe"] for kind in ("startup", "liveness", "readiness")}
    assert probes["readiness"]["httpGet"]["path"] == "/readyz"
    assert probes["liveness"]["httpGet"]["path"] == "/healthz"
    bind = _config_maps(manifests)["idp-config"]["IDP_BIND"]
    for probe in probes.values():
        assert probe["httpGet"]["path"] in idp_routes
        assert _port(container, probe["httpGet"]["port"]) == int(bind.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
def linking_health(tmp_path_factory):
    """A real linking service (SQLite) and a stub of its grpc.health.v1 service."""
    url = f"sqlite:///{tmp_path_factory.mktemp('linking') / 'linking.db'}"
    engine = make_engine(url)
    create_schema(engine)
    engine.dispose()
    env = {
        "LINKING_DATABASE_URL": url,
        "LINKING_LISTEN": "127.0.0.1:0",
        "LINKING_SECRET_KEY": "deploy-test-secret-key-0123456789",
    }
    server = build(linking_service.config.load_settings(env))
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    yield health_pb2_grpc.HealthStub(channel)
    channel.close()
    server.stop(0)


def test_linking_probes_ask_the_grpc_health_service(manifests, linking_health):
    deployment = _one(manifests, "Deployment", "linking-service")
    (container,) = pod_spec(deployment)["containers"]
    listen = _config_maps(manifests)["linking-config"]["LINKING_LISTEN"]
    grpc_port = _port(container, "grpc")
    assert grpc_port == int(listen.rsplit(":", 1)[1])
    for kind in ("startup", "readiness"):
        probe = container[f"{kind}Probe"]["grpc"]
        assert probe["port"] == grpc_port
        request = health_pb2.HealthCheckRequest(service=probe.get("service", ""))
        answer = linking_health.Check(request, timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    assert _port(container, container["livenessProbe"]["tcpSocket"]["port"]) == grpc_port


def test_selectors_find_their_pods(manifests):
    templates = {
        m["metadata"]["name"]: m["spec"]["template"]["metadata"]["labels"]
        for m in manifests
        if m["kind"] == "Deployment"
    }
    for resource in manifests:
        kind, name = resource["kind"], resource["metadata"]["name"]
        if kind == "Deployment":
            assert _matches(resource["spec"]["selector"]["matchLabels"], templates[name])
        elif kind == "Service":
            assert any(_matches(resource["spec"]["selector"], t) for t in templates.values())
        elif kind == "PodDisruptionBudget":
            selector = resource["spec"]["selector"]["matchLabels"]
            assert any(_matches(selector, t) for t in templates.values()), name
        elif kind == "HorizontalPodAutoscaler":
            assert resource["spec"]["scaleTargetRef"]["name"] in templates
            assert resource["spec"]["minReplicas"] >= 2


def test_metrics_are_scraped_but_not_exposed(manifests):
    for resource in manifests:
        if resource["kind"] == "Service":
            for port in resource["spec"]["ports"]:
                assert port["port"] not in METRICS_PORTS and port["targetPort"] != "metrics"
    for resource, pod in _workloads(manifests):
        if resource["kind"] != "Deployment":
            continue
        annotations = resource["spec"]["template"]["metadata"]["annotations"]
        (container,) = pod["containers"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == _port(container, "metrics")
        assert _port(container, "metrics") in METRICS_PORTS
    # Whoever may reach a metrics port comes from the monitoring namespace.
    for policy in (m for m in manifests if m["kind"] == "NetworkPolicy"):
        for rule in policy["spec"]["ingress"]:
            if {p["port"] for p in rule["ports"]} & METRICS_PORTS:
                assert rule["from"] == [{"namespaceSelector": {"matchLabels": MONITORING}}]


def test_only_the_idp_and_internal_namespaces_reach_the_linking_service(manifests):
    deployment = _one(manifests, "Deployment", "linking-service")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    grpc_port = _port(pod_spec(deployment)["containers"][0], "grpc")
    policies = [
        m
        for m in manifests
        if m["kind"] == "NetworkPolicy"
        and _matches(m["spec"]["podSelector"]["matchLabels"], pod_labels)
    ]
    assert policies and all("Ingress" in p["spec"]["policyTypes"] for p in policies)
    allowed = []
    for policy in policies:
        for rule in policy["spec"]["ingress"]:
            if grpc_port in {p["port"] for p in rule.get("ports", [])} or not rule.get("ports"):
                assert rule.get("from"), "a rule without 'from' admits every pod"
                allowed += rule["from"]
    assert allowed == [
        {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "idp"}}},
        {"namespaceSelector": {"matchLabels": {"elk.rt.ru/internal": "true"}}},
    ]
    for name in ("idp-web", "idp-linking-events"):
        template = _one(manifests, "Deployment", name)["spec"]["template"]["metadata"]
        assert template["labels"]["app.kubernetes.io/name"] == "idp"


def _gunicorn_settings(env: dict[str, str], monkeypatch) -> dict:
    """deploy/gunicorn.conf.py evaluated as gunicorn does, with ``env`` in the environment."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # The file sets PROMETHEUS_MULTIPROC_DIR for gunicorn's workers; in this test process it
    # would switch prometheus_client (imported later by other tests) to multiprocess files.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="gunicorn-conf-"))
    namespace: dict = {}
    exec(compile(GUNICORN_CONF.read_text(), str(GUNICORN_CONF), "exec"), namespace)
    return namespace


def _pause(container) -> int:
    command = container["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    return int(command[1])


def test_pods_are_given_time_to_drain(manifests, monkeypatch):
    config_maps = _config_maps(manifests)
    web = pod_spec(_one(manifests, "Deployment", "idp-web"))
    gunicorn = _gunicorn_settings(config_maps["idp-config"], monkeypatch)
    assert gunicorn["bind"] == config_maps["idp-config"]["IDP_BIND"]
    assert gunicorn["workers"] == int(config_maps["idp-config"]["IDP_WORKERS"])
    needed = _pause(web["containers"][0]) + gunicorn["graceful_timeout"]
    assert web["terminationGracePeriodSeconds"] >= needed
    linking = pod_spec(_one(manifests, "Deployment", "linking-service"))
    grace = int(config_maps["linking-config"]["LINKING_SHUTDOWN_GRACE"])
    needed = _pause(linking["containers"][0]) + grace + WATCHDOG_MARGIN
    assert linking["terminationGracePeriodSeconds"] >= needed


def test_the_autoscaler_has_requests_to_measure(manifests):
    for hpa in (m for m in manifests if m["kind"] == "HorizontalPodAutoscaler"):
        target = _one(manifests, "Deployment", hpa["spec"]["scaleTargetRef"]["name"])
        resources = {m["resource"]["name"] for m in hpa["spec"]["metrics"]}
        for container in pod_spec(target)["containers"]:
            assert resources <= set(container["resources"]["requests"])
        assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]

"""deploy/compose.yaml (no Docker engine is needed): the services the platform needs, valid
compose structure, references that resolve (images' build targets, dependencies, shared
network namespaces, mounted files), every variable one the settings read, and each
service's environment accepted by its own settings loader."""

from __future__ import annotations

import pytest
import yaml

import demo_portals.config
import idp.config
import linking_service.config
from idp.demo import DEMO_PORTALS
from tests.deploy.dockerfile import DOCKERFILE, parse
from tests.deploy.support import DEPLOY, known_vars, missing_command, shell_commands

COMPOSE = DEPLOY / "compose.yaml"
TOP_LEVEL = {"name", "services", "volumes", "networks", "configs", "secrets"}
# The compose specification's service attributes that this file may use.
SERVICE_KEYS = {
    "image",
    "build",
    "command",
    "environment",
    "ports",
    "depends_on",
    "volumes",
    "healthcheck",
    "restart",
    "network_mode",
}
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
REQUIRED = {
    "postgres",
    "redis",
    "mailpit",
    "idp-migrate",
    "linking-migrate",
    "idp",
    "idp-worker",
    "idp-linking-events",
    "linking-service",
    "portal-shop",
    "portal-tv",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict]:
    return compose["services"]


def _ours(service: dict) -> bool:
    return service.get("image", "").startswith("elk/")


def _command(service: dict) -> list[str]:
    if "command" in service:
        return service["command"]
    return ["gunicorn"] if service["build"]["target"] == "idp" else ["linking-service", "serve"]


def test_structure(compose, services):
    assert {k for k in compose if not k.startswith("x-")} <= TOP_LEVEL
    assert set(services) >= REQUIRED
    for name, service in services.items():
        assert set(service) <= SERVICE_KEYS, name
        assert "image" in service, name
        for other, how in service.get("depends_on", {}).items():
            assert other in services and how["condition"] in CONDITIONS, name
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name}: publish on loopback only"
        if "network_mode" in service:
            owner = service["network_mode"].removeprefix("service:")
            assert owner in services and "network_mode" not in services[owner]
            assert "ports" not in service, name
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).is_file(), f"{name}: {source}"
            else:
                assert source in compose["volumes"], name


def test_images_build_from_our_dockerfile(services):
    _, stages = parse(DOCKERFILE.read_text())
    names = {stage.name for stage in stages}
    for name, service in services.items():
        if _ours(service):
            build = service["build"]
            assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
            assert build["target"] in names, name
            for argv in shell_commands(_command(service)):
                assert missing_command(argv) is None, f"{name}: {argv}"


def test_dependencies_can_be_met(services):
    _, stages = parse(DOCKERFILE.read_text())
    checked = {s.name for s in stages if s.all("HEALTHCHECK") and s.all("HEALTHCHECK") != ["NONE"]}
    for name, service in services.items():
        for other, how in service.get("depends_on", {}).items():
            if how["condition"] == "service_healthy":
                target = services[other].get("build", {}).get("target")
                assert "healthcheck" in services[other] or target in checked, (name, other)
            if how["condition"] == "service_completed_successfully":
                assert services[other]["restart"] == "no", other


def test_every_variable_is_one_the_services_read(services):
    known = known_vars()
    for name, service in services.items():
        if _ours(service):
            unknown = set(service.get("environment", {})) - set(known)
            assert not unknown, f"{name}: variables no service reads: {sorted(unknown)}"


def test_each_service_loads_its_settings(services):
    for name, service in services.items():
        if not _ours(service):
            continue
        env = {k: str(v) for k, v in service["environment"].items()}
        argv = _command(service)
        if argv[0] == "demo-portal":
            settings = demo_portals.config.load_settings(argv[1], env)
            client = {client_id: base for _, client_id, _, base in DEMO_PORTALS}
            # The client `idp demo` registered for this portal redirects to where it runs.
            assert client[settings.client_id] == settings.base_url
            port = settings.base_url.rsplit(":", 1)[1]
            owner = services[service["network_mode"].removeprefix("service:")]
            assert f"127.0.0.1:{port}:{port}" in owner["ports"]
        elif argv[0] == "linking-service" or "linking" in service["build"]["target"]:
            settings = linking_service.config.load_settings(env)
            assert settings.database_url.startswith("postgresql")
        else:
            settings = idp.config.load_settings(env)
            assert settings.database_url.startswith("postgresql") and settings.redis_url
            assert settings.smtp_host == "mailpit"
            assert settings.sms_gateway_url is None  # codes in the development outbox
            assert settings.issuer == "http://127.0.0.1:8000"


def test_gunicorn_serves_where_the_health_check_and_ports_look(services):
    idp = services["idp"]
    assert idp["environment"]["IDP_BIND"] == "0.0.0.0:8000"
    assert "127.0.0.1:8000:8000" in idp["ports"]
    assert int(idp["environment"]["IDP_WORKERS"]) >= 1

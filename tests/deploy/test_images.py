"""deploy/Dockerfile, read as Docker would (no Docker engine is needed): multi-stage, the
final images slim, non-root by number, without compilers or build tools, installing exactly
the lock that pyproject.toml's pins resolve to, and copying only what exists and what
.dockerignore lets into the build context."""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib

import pytest

from tests.deploy.dockerfile import DOCKERFILE, Stage, parse
from tests.deploy.support import DEPLOY, ROOT, missing_command

LOCK = DEPLOY / "requirements.lock"
TARGETS = ("idp", "linking")
BUILD_TOOLS = re.compile(
    r"\b(gcc|g\+\+|clang|build-essential|make|cmake|python3?-dev|libc6?-dev)\b"
)


@pytest.fixture(scope="module")
def dockerfile():
    args, stages = parse(DOCKERFILE.read_text())
    return args, {stage.name: stage for stage in stages}


def chain(stages: dict[str, Stage], name: str) -> list[Stage]:
    """A stage and every stage it is built FROM, the stage first."""
    found = [stages[name]]
    while found[-1].base in stages:
        found.append(stages[found[-1].base])
    return found


def test_both_targets_are_slim_multi_stage_images(dockerfile):
    args, stages = dockerfile
    assert "slim" in args["PYTHON_IMAGE"] and args["PYTHON_IMAGE"].startswith("python:3.11")
    for target in TARGETS:
        layers = chain(stages, target)
        assert layers[-1].base == "${PYTHON_IMAGE}"
        copied = [a for stage in layers for a in stage.all("COPY") if a.startswith("--from=")]
        assert copied == ["--from=build /opt/venv /opt/venv"], target
        assert "build" not in [stage.name for stage in layers]


@pytest.mark.parametrize("target", TARGETS)
def test_final_images_run_as_a_numeric_non_root_user(dockerfile, target):
    _, stages = dockerfile
    users = [u for stage in reversed(chain(stages, target)) for u in stage.all("USER")]
    assert users, target
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) > 0 and (not gid or int(gid) > 0)


@pytest.mark.parametrize("target", TARGETS)
def test_no_compiler_or_build_tool_in_the_final_images(dockerfile, target):
    _, stages = dockerfile
    for stage in chain(stages, target):
        for command in stage.all("RUN"):
            assert not BUILD_TOOLS.search(command), f"{stage.name}: {command}"
            assert "apt-get install" not in command and "pip install" not in command


def test_commands_and_health_checks_exist(dockerfile):
    _, stages = dockerfile
    for target in TARGETS:
        (cmd,) = stages[target].all("CMD")
        assert missing_command(json.loads(cmd)) is None
    (healthcheck,) = stages["idp"].all("HEALTHCHECK")
    assert "http://127.0.0.1:8000/healthz" in healthcheck
    assert stages["linking"].all("HEALTHCHECK") == ["NONE"]  # the gRPC health service instead
    (gunicorn,) = stages["idp"].all("COPY")
    assert gunicorn == "deploy/gunicorn.conf.py /app/gunicorn.conf.py"
    assert "/app/gunicorn.conf.py" in stages["idp"].all("CMD")[0]


def test_build_stage_generates_code_and_installs_the_lock(dockerfile):
    _, stages = dockerfile
    runs = " ".join(stages["build"].all("RUN"))
    assert "pip install --no-deps --require-virtualenv -r deploy/requirements.lock" in runs
    assert "make install proto VENV=/opt/venv" in runs
    assert "pip install --no-deps --no-build-isolation" in runs


def _ignored(path: str, patterns: list[str]) -> bool:
    # .dockerignore semantics: the last matching pattern wins, "!" re-includes, a pattern that
    # names a folder covers what is inside (fnmatch's "*" also crosses "/").
    ignored = False
    for pattern in patterns:
        glob = pattern.removeprefix("!")
        if fnmatch.fnmatch(path, glob) or fnmatch.fnmatch(path, glob + "/*"):
            ignored = not pattern.startswith("!")
    return ignored


def test_every_copied_path_exists_and_is_in_the_build_context(dockerfile):
    _, stages = dockerfile
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for stage in stages.values():
        for args in stage.all("COPY"):
            words = shlex.split(args)
            if words[0].startswith("--from="):
                continue
            for source in words[:-1]:
                path = ROOT / source
                assert path.exists(), f"COPY {source}: no such path"
                probe = f"{source}/__init__.py" if path.is_dir() else source
                assert not _ignored(probe, patterns), f"COPY {source}: excluded by .dockerignore"
    # And what must never be sent: environments, databases, generated code, git.
    for secret in (".venv/bin/python", "var/idp.sqlite3", ".git/config", "elk_proto/x_pb2.py"):
        assert _ignored(secret, patterns), secret


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_lock_holds_every_pin_of_pyproject():
    pinned = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    locked = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            locked[_normalise(name)] = version
    for requirement in pinned:
        spec = re.sub(r"\[.*\]", "", requirement)
        name, _, version = spec.partition("==")
        assert locked.get(_normalise(name)) == version, f"{requirement}: run `make lock`"
    assert all(re.fullmatch(r"[\w.+!-]+", v) for v in locked.values())

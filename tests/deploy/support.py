"""What the deployment tests share: the repository's paths and the variable names each
service reads (declared by its config module, checked in test_settings_names.py)."""

from __future__ import annotations

import re
from pathlib import Path

import demo_portals.config
import idp.config
import linking_service.config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
GUNICORN_CONF = DEPLOY / "gunicorn.conf.py"
NAME = re.compile(r"\b(?:IDP|LINKING|PORTAL)_[A-Z0-9_]*[A-Z0-9]\b")
QUOTED_NAME = re.compile(r"[\"']((?:IDP|LINKING|PORTAL)_[A-Z0-9_]+)[\"']")


def gunicorn_vars() -> set[str]:
    """What deploy/gunicorn.conf.py reads from the environment (bind, workers, threads…)."""
    return set(QUOTED_NAME.findall(GUNICORN_CONF.read_text()))


def known_vars() -> dict[str, set[str]]:
    """Every variable some process of the platform reads, with the components reading it."""
    known: dict[str, set[str]] = {}
    for component, names in (
        ("idp", idp.config.ENV_VARS),
        ("linking", linking_service.config.ENV_VARS),
        ("portal", demo_portals.config.ENV_VARS),
        ("gunicorn", sorted(gunicorn_vars())),
    ):
        for name in names:
            known.setdefault(name, set()).add(component)
    return known


# Commands of issue 11 that other branches add (housekeeping and key rotation); the manifests
# name them already. Remove an entry once its command is on main.
ARRIVING = {"idp purge", "linking-service purge", "idp keys rotate --if-older-than"}


def missing_command(argv: list[str]) -> str | None:
    """What of ``argv`` our command line does not know (None: it resolves), e.g.
    ``["idp", "keys", "rotate", "--if-older-than", "30d"]``."""
    import click

    import demo_portals.config
    import idp.cli
    import linking_service.cli

    if argv[0] == "demo-portal":
        return None if argv[1:] and argv[1] in demo_portals.config.PRESETS else " ".join(argv)
    if argv[0] == "gunicorn":
        return None
    groups = {"idp": idp.cli.main, "linking-service": linking_service.cli.main}
    if argv[0] not in groups:
        return argv[0]
    command, words = groups[argv[0]], [argv[0]]
    rest = list(argv[1:])
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        words.append(name)
        if name not in command.commands:
            return " ".join(words)
        command = command.commands[name]
    if isinstance(command, click.Group):
        return " ".join(words)
    options = {opt for param in command.params for opt in getattr(param, "opts", [])}
    for word in rest:
        if word.startswith("-") and word.split("=")[0] not in options:
            return " ".join([*words, word.split("=")[0]])
    return None


def shell_commands(command: list[str]) -> list[list[str]]:
    """The commands of a container's command: itself, or each step of ``sh -c "a && b"``."""
    if command[:2] == ["sh", "-c"]:
        return [step.split() for step in command[2].split("&&")]
    return [command]

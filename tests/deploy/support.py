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


def known_vars() -> dict[str, str]:
    """Every variable some process of the platform reads, with the component reading it."""
    known: dict[str, str] = {}
    for component, names in (
        ("idp", idp.config.ENV_VARS),
        ("linking", linking_service.config.ENV_VARS),
        ("portal", demo_portals.config.ENV_VARS),
        ("gunicorn", sorted(gunicorn_vars())),
    ):
        for name in names:
            known.setdefault(name, component)
    return known

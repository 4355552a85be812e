"""Each config module's ENV_VARS is exactly what its service reads: every name read anywhere
in the package is declared, and every declared name changes what load_settings returns (or
makes it refuse). The deployment files and README are then checked against these tuples."""

from __future__ import annotations

import pytest

import demo_portals.config
import idp.config
import linking_service.config
from tests.deploy.support import QUOTED_NAME, ROOT


def _quoted_names(package: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        if "migrations" not in path.parts:
            found |= set(QUOTED_NAME.findall(path.read_text()))
    return found


@pytest.mark.parametrize(
    ("package", "declared"),
    [
        ("idp", idp.config.ENV_VARS),
        ("linking_service", linking_service.config.ENV_VARS),
        ("demo_portals", demo_portals.config.ENV_VARS),
    ],
)
def test_every_name_read_is_declared(package, declared):
    undeclared = _quoted_names(package) - set(declared)
    assert not undeclared, f"{package} reads {sorted(undeclared)}: add them to its ENV_VARS"
    assert len(set(declared)) == len(declared)


def _candidates(tmp_path):
    # A missing file, a number and a word: every variable refuses or takes one of them.
    return (str(tmp_path / "missing.pem"), "99", "bad value!")


def _changes(load, base: dict[str, str], name: str, tmp_path) -> bool:
    reference = load(base)
    for value in _candidates(tmp_path):
        if base.get(name) == value:
            continue
        try:
            if load({**base, name: value}) != reference:
                return True
        except (
            idp.config.ConfigError,
            linking_service.config.ConfigError,
            demo_portals.config.ConfigError,
        ):
            return True
    return False


def test_every_idp_name_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = {
        "IDP_VAR_DIR": str(tmp_path / "var"),
        "IDP_SECRET_KEY": "s" * 40,
        "IDP_DATABASE_URL": f"sqlite:///{tmp_path / 'idp.sqlite3'}",
        "IDP_LINKING_TARGET": "127.0.0.1:50051",
    }
    unread = [
        name
        for name in idp.config.ENV_VARS
        if not _changes(idp.config.load_settings, base, name, tmp_path)
    ]
    assert not unread, f"idp.config.ENV_VARS names variables nobody reads: {unread}"


def test_every_linking_name_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default SQLite file's folder is made under var/
    base = {"LINKING_SECRET_KEY": "s" * 40}
    unread = [
        name
        for name in linking_service.config.ENV_VARS
        if not _changes(linking_service.config.load_settings, base, name, tmp_path)
    ]
    assert not unread, f"linking_service.config.ENV_VARS names unread variables: {unread}"


def test_every_portal_name_is_read(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = {"PORTAL_SHOP_SECRET_KEY": "s" * 32, "PORTAL_TV_SECRET_KEY": "t" * 32}

    def load(env):
        return tuple(demo_portals.config.load_settings(key, env) for key in ("shop", "tv"))

    unread = [
        name for name in demo_portals.config.ENV_VARS if not _changes(load, base, name, tmp_path)
    ]
    assert not unread, f"demo_portals.config.ENV_VARS names unread variables: {unread}"

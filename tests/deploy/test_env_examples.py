"""deploy/*.env.example: every variable named (set or commented out) is one the settings
read, and each example, with its TLS files present, is a production configuration its
service accepts."""

from __future__ import annotations

import re

import pytest

import idp.config
import linking_service.config
from tests.deploy.support import DEPLOY, NAME, known_vars

EXAMPLES = {"idp.env.example": idp.config, "linking.env.example": linking_service.config}
ASSIGNMENT = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")


def _read(path):
    named, values = [], {}
    for line in path.read_text().splitlines():
        named += NAME.findall(line)
        match = ASSIGNMENT.match(line.strip())
        if match and not line.startswith("#"):
            values[match[1]] = match[2].strip()
    return named, values


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_every_named_variable_is_read(example):
    named, _ = _read(DEPLOY / example)
    unknown = sorted(set(named) - set(known_vars()))
    assert not unknown, f"{example} names variables no service reads: {unknown}"


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_the_example_is_a_production_configuration(example, tmp_path):
    _, values = _read(DEPLOY / example)
    for name, value in values.items():
        if value.startswith("/etc/elk/tls/"):
            values[name] = str(tmp_path / value.rsplit("/", 1)[1])
            (tmp_path / value.rsplit("/", 1)[1]).write_text("PEM")
    settings = EXAMPLES[example].load_settings(values)
    assert settings.env == "production"

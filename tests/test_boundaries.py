"""Two houses, one door: the architecture's import rules, read from the source itself.

The IdP and the linking service never import each other; they share only the contract
(``elk_proto``, generated from ``protos/``) and ``elk_common``. Services and domains import no
web framework, no gRPC and no generated ``*_pb2`` (only the edges and one conversion module do).
Every ``.py`` file is parsed (not imported), so a module that is never loaded by a test is still
checked, and an import hidden inside a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ("migrations",)


def sources(package: str) -> list[Path]:
    """Every hand-written module of a top-level package (Alembic's generated scripts aside)."""
    return sorted(
        path
        for path in (ROOT / package).rglob("*.py")
        if not any(part in GENERATED for part in path.relative_to(ROOT).parts)
    )


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    """Absolute names of every module the file imports, relative imports resolved."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                stem = ".".join(base + ([node.module] if node.module else []))
            else:
                stem = node.module or ""
            found.add(stem)
            found.update(f"{stem}.{alias.name}" for alias in node.names)
    return found


def offending(path: Path, forbidden: tuple[str, ...]) -> list[str]:
    """The imports of ``path`` that are, or live under, a forbidden top-level name, or are
    generated protobuf modules (``forbidden`` may name ``"*_pb2"`` for those)."""
    bad = []
    for name in sorted(imports(path)):
        top = name.split(".")[0]
        last = name.split(".")[-1]
        if top in forbidden or (
            "*_pb2" in forbidden and (last.endswith("_pb2") or last.endswith("_pb2_grpc"))
        ):
            bad.append(name)
    return bad


def check(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in paths
        for name in offending(path, forbidden)
    ]


WEB_AND_WIRE = ("flask", "flask_wtf", "flask_babel", "werkzeug", "grpc", "elk_proto", "*_pb2")


def service_modules() -> list[Path]:
    services = sources("idp/services") + sources("idp/domain")
    services += [
        ROOT / "linking_service" / name
        for name in ("service.py", "attachment.py", "domain.py", "ports.py")
    ]
    return services


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("idp", ("linking_service", "demo_portals", "social_fakes")),
        ("linking_service", ("idp", "demo_portals", "social_fakes")),
        # The social providers' fakes stand in for the outside world: they know no house.
        ("social_fakes", ("idp", "linking_service", "elk_common", "elk_proto")),
        # The demo portals are outside callers: the contract only, like any company portal.
        ("demo_portals", ("idp", "linking_service", "elk_common")),
        (
            "elk_common",
            ("idp", "linking_service", "elk_proto", "flask", "grpc", "sqlalchemy", "redis"),
        ),
    ],
)
def test_the_houses_do_not_import_each_other(package, forbidden):
    assert len(sources(package)) >= 3, f"no sources found under {package}/"
    assert check(sources(package), forbidden) == []


def test_services_import_no_framework_no_grpc_no_generated_code():
    paths = service_modules()
    assert all(path.is_file() for path in paths), [str(p) for p in paths if not p.is_file()]
    assert check(paths, WEB_AND_WIRE) == []


def test_the_rules_see_what_they_forbid():
    """The walker is not blind: the edges really import what the services may not."""
    edge = ROOT / "idp" / "adapters" / "linking_grpc.py"
    assert offending(edge, WEB_AND_WIRE) == [
        "elk_proto.linking.v1",
        "elk_proto.linking.v1.linking_pb2",
        "elk_proto.linking.v1.linking_pb2_grpc",
        "google.rpc.error_details_pb2",
        "grpc",
    ]
    servicer = ROOT / "linking_service" / "servicer.py"
    assert "linking_service.convert" in imports(servicer)  # `from linking_service import convert`


def test_imports_inside_functions_and_relative_ones_count(tmp_path, monkeypatch):
    """``from ..web import views`` inside a house counts as the absolute name it means, and an
    import hidden in a function body is found as well as one at the top."""
    package = tmp_path / "idp" / "services"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("from . import sibling\n")
    module = package / "leaky.py"
    module.write_text(
        "def later():\n    import linking_service.gen.linking_pb2\n    from ..web import views\n"
    )
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert imports(package / "__init__.py") == {"idp.services", "idp.services.sibling"}
    assert imports(module) == {"linking_service.gen.linking_pb2", "idp.web", "idp.web.views"}
    assert offending(module, ("linking_service",)) == ["linking_service.gen.linking_pb2"]
    assert offending(module, ("*_pb2",)) == ["linking_service.gen.linking_pb2"]

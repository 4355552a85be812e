"""Every ErrorInfo reason the linking service can send is documented in its contract
(issue 7): the reasons are collected from the code and from ``errors.REASONS``, and looked up
in the error table at the head of ``protos/linking/v1/linking.proto``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import grpc

from linking_service import domain
from linking_service.errors import REASONS, code_of, reason_of, to_status

ROOT = Path(__file__).resolve().parents[2]
PROTO = ROOT / "protos" / "linking" / "v1" / "linking.proto"
SOURCE = ROOT / "linking_service"


def documented() -> dict[str, set[str]]:
    """{status code name: reasons} from the proto's leading comment table."""
    table: dict[str, set[str]] = {}
    current = None
    for line in PROTO.read_text().splitlines():
        if not line.startswith("//"):
            break
        text = line[2:].strip()
        first, _, rest = text.partition(" ")
        if first in grpc.StatusCode.__members__ and rest.strip():
            current, text = first, rest
        elif not (text and re.fullmatch(r"[A-Z_]+,?", text.split()[0])):
            current = None
            continue
        if current:
            names = text.split("(")[0].replace(",", " ").split()
            table.setdefault(current, set()).update(n for n in names if re.fullmatch(r"[A-Z_]+", n))
    return table


def error_classes() -> dict[str, type[domain.LinkingError]]:
    return {
        name: cls
        for name, cls in vars(domain).items()
        if isinstance(cls, type) and issubclass(cls, domain.LinkingError)
    }


def emitted() -> set[tuple[grpc.StatusCode, str]]:
    """(code, reason) for every reason the code raises: class defaults and literal reasons
    passed to an error's constructor anywhere in linking_service/ (generated code aside)."""
    classes = error_classes()
    found = {(code_of(cls), cls.reason) for cls in classes.values()}
    for path in SOURCE.rglob("*.py"):
        if "gen" in path.relative_to(SOURCE).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Name):
                continue
            cls = classes.get(node.func.id)
            if cls is None:
                continue
            args = node.args[1:2] + [k.value for k in node.keywords if k.arg == "reason"]
            for arg in args:
                assert isinstance(arg, ast.Constant), f"{path}:{node.lineno}: reason not a literal"
                found.add((code_of(cls), arg.value))
    return found


def test_every_reason_sent_is_in_the_mapping_and_documented():
    reasons = emitted()
    assert ("INVALID_ARGUMENT", "REQUEST_ID_REUSED") in {(c.name, r) for c, r in reasons}
    table = documented()
    for code, reason in reasons:
        assert reason in REASONS[code], f"{reason} ({code.name}) is missing from errors.REASONS"
    for code, names in REASONS.items():
        for reason in names:
            assert reason in table.get(code.name, set()), f"{code.name} / {reason} undocumented"


def test_an_unlisted_reason_is_never_sent():
    status = to_status(domain.ConcurrentChange("busy", "SOMETHING_NEW"))
    assert status.code == grpc.StatusCode.INTERNAL
    assert "busy" not in status.details

    class Call(grpc.RpcError):
        def trailing_metadata(self):
            return status.trailing_metadata

        def code(self):
            return status.code

        def details(self):
            return status.details

    assert reason_of(Call()) == "INTERNAL"

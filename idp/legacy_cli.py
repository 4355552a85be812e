"""``idp legacy``: load accounts of the older regional cabinets from a file.

File formats (UTF-8, a byte-order mark allowed), chosen by extension:

``.csv`` — a header row (line 1), then one account per row; columns in any order::

    login, email, phone, family_name, given_name, middle_name, region, password_hash, source

``family_name``, ``given_name``, ``password_hash`` and ``source`` are required, and at least
one of ``login`` (a mobile number or an e-mail), ``email``, ``phone``; empty cells are absent.
``region``, when given, is a federal subject spelled as in :mod:`idp.domain.regions`.

``.jsonl`` / ``.ndjson`` — one JSON object per line with the same keys (strings or null);
blank lines are skipped.

Rules and accepted hash formats: :mod:`idp.services.legacy`. All rows are imported or none;
errors name the line of the file where the record starts.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from idp.services.legacy import CONTACT_FIELDS, FIELDS, REQUIRED, ImportFailed, LegacyImporter

Records = Iterator[tuple[int, dict | str]]


def read_csv(text: str) -> Records:
    """(line, record) pairs from CSV with a header row, or (line, error) for unusable rows."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [name.strip().lower() for name in next(reader, None) or []]
        problems = [f"unknown column {name!r}" for name in header if name not in FIELDS]
        problems += [f"missing column {name!r}" for name in REQUIRED if name not in header]
        if not set(CONTACT_FIELDS) & set(header):
            problems.append("a login, email or phone column is required")
        if len(set(header)) != len(header):
            problems.append("a column is named twice")
        if problems:
            yield 1, "; ".join(problems)
            return
        last = reader.line_num
        for cells in reader:
            start, last = last + 1, reader.line_num  # a quoted cell may span lines
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(header):
                yield start, f"expected {len(header)} fields, found {len(cells)}"
            else:
                yield start, dict(zip(header, cells, strict=True))
    except csv.Error as exc:
        yield max(1, reader.line_num), f"malformed CSV: {exc}"


def read_jsonl(text: str) -> Records:
    """(line, record) pairs from JSON Lines."""
    # split("\n"), not splitlines(): a JSON string may hold U+2028, which is no line break.
    for line, raw in enumerate(text.split("\n"), start=1):
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            yield line, "not valid JSON"
            continue
        yield line, value if isinstance(value, dict) else "not a JSON object"


def read_file(path: str | Path) -> Records:
    """The records of a ``.csv``, ``.jsonl`` or ``.ndjson`` file; :class:`ImportFailed` when
    the file cannot be read at all."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise ImportFailed([f"{path.name}: use a .csv, .jsonl or .ndjson file"])
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ImportFailed([f"{path.name}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ImportFailed([f"line {line}: not UTF-8 text"]) from None
    return read_csv(text) if suffix == ".csv" else read_jsonl(text)


@click.group()
def legacy() -> None:
    """Accounts of the older regional cabinets of «Ростелеком»."""


@legacy.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def legacy_import(file: Path) -> None:
    """Import FILE (.csv, .jsonl) all or nothing; prints a JSON report, or each problem as
    `line N: …` on standard error and exits 1."""
    # Imported here, not at the top: idp.cli imports this module to register the group.
    from idp.cli import _app
    from idp.extensions import db

    app = _app()
    with app.app_context():
        importer = LegacyImporter(db.session, clock=app.extensions["idp.services"].clock)
        try:
            report = importer.import_records(read_file(file))
        except ImportFailed as exc:
            for error in exc.errors:
                click.echo(error, err=True)
            sys.exit(1)
    click.echo(json.dumps(report.as_dict(), ensure_ascii=False))

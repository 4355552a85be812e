"""The ``linking-service`` command: serve, database, billing directory, housekeeping."""

from __future__ import annotations

from pathlib import Path

import click

from linking_service.config import ConfigError, load_settings


def _settings():
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


def _sessions():
    """Sessions on a database whose schema is current; migrating is ``db upgrade``'s job."""
    from linking_service.adapters.sql.db import (
        SchemaBehind,
        check_schema,
        make_engine,
        make_sessions,
    )

    engine = make_engine(_settings().database_url)
    try:
        check_schema(engine)
    except SchemaBehind as exc:
        raise click.ClickException(str(exc)) from None
    return make_sessions(engine)


@click.group()
def main() -> None:
    """ЕЛК billing-account linking service. Settings come from LINKING_* variables."""


@main.command()
def serve() -> None:
    """Serve gRPC on LINKING_LISTEN (127.0.0.1:50051) until SIGTERM or SIGINT, then drain
    for at most LINKING_SHUTDOWN_GRACE seconds (10)."""
    from linking_service.adapters.billing_sql import release_large_buffers
    from linking_service.adapters.sql.db import SchemaBehind
    from linking_service.observability import configure_logging, serve_metrics
    from linking_service.server import build
    from linking_service.shutdown import StopSignal

    stop = StopSignal()
    settings = _settings()
    configure_logging(settings.log_format)
    release_large_buffers()  # argon2id's buffers not kept per thread (see there)
    try:
        server = build(settings)
    except SchemaBehind as exc:
        raise click.ClickException(str(exc)) from None
    if settings.metrics_port is not None:
        try:
            serve_metrics(settings.metrics_port)
        except OSError as exc:
            raise click.ClickException(f"LINKING_METRICS_PORT: {exc}") from None
    transport = "TLS" if settings.tls_cert else "plaintext"
    click.echo(f"linking service on {settings.listen} ({transport}; IdP {settings.idp_issuer})")
    server.serve_until_signalled(settings.shutdown_grace, stop)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply the migrations: the only command that changes the schema."""
    from linking_service.adapters.sql.db import create_schema, make_engine

    engine = make_engine(_settings().database_url)
    create_schema(engine)
    engine.dispose()
    click.echo("database is up to date")


@main.command()
@click.option("--batch", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@click.option(
    "--idempotency-hours",
    default=24,
    show_default=True,
    type=click.IntRange(1, 24 * 90),
    help="Keep idempotency records this long (a retry repeats the first answer).",
)
def purge(batch: int, idempotency_hours: int) -> None:
    """Delete expired attachment flows, old idempotency records and attempt counters past
    their window, BATCH rows per transaction (a cron job; replicas may run it at once)."""
    import json

    from linking_service.adapters.sql.housekeeping import Housekeeping

    sessions = _sessions()
    deleted = Housekeeping(sessions, idempotency_retention=idempotency_hours * 3600).purge(batch)
    click.echo(json.dumps({"deleted": deleted}))


@main.group()
def billing() -> None:
    """The billing directory (the service's copy of billing data)."""


@billing.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def billing_import(path: Path) -> None:
    """Import CSV or JSON Lines; a bad row aborts the whole import (line numbers shown)."""
    from linking_service.billing_import import ImportFailed, import_file

    try:
        report = import_file(path, _sessions(), None)
    except ImportFailed as exc:
        for error in exc.errors:
            click.echo(error, err=True)
        raise click.ClickException(f"nothing imported: {len(exc.errors)} bad row(s)") from None
    click.echo(str(report))


@billing.command("demo")
def billing_demo() -> None:
    """Load the deterministic demo billing accounts (idempotent)."""
    from linking_service.billing_demo import load_demo

    count = load_demo(_sessions(), None)
    click.echo(f"demo billing accounts: {count}")


if __name__ == "__main__":  # pragma: no cover
    main()

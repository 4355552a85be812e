"""The ``idp`` command: database, keys, clients, users, serving."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import click

from idp.config import ConfigError, load_settings
from idp.domain.errors import IdpError
from idp.legacy_cli import legacy
from idp.ops_cli import audit, parse_age, purge, support

#: Seconds ``idp serve`` may take to stop after SIGTERM before it exits regardless.
SERVE_STOP_DEADLINE = 5.0


def _settings():
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


def _app(settings=None):
    from idp import create_app

    try:
        return create_app(settings or load_settings())
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


def _serve_metrics(settings) -> None:
    """This process's own ``/metrics`` on IDP_METRICS_PORT, when set."""
    if settings.metrics_port is None:
        return
    from idp.adapters.metrics import serve_metrics

    try:
        serve_metrics(settings.metrics_port)
    except OSError as exc:
        raise click.ClickException(f"IDP_METRICS_PORT {settings.metrics_port}: {exc}") from None


def _fail(exc: IdpError) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group()
def main() -> None:
    """ЕЛК identity provider administration. Settings come from IDP_* variables."""


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration (Alembic)."""
    from flask_migrate import upgrade

    app = _app()
    with app.app_context():
        upgrade(directory=app.extensions["migrate"].directory)
    click.echo("database is up to date")


@main.group()
def keys() -> None:
    """Token-signing keys."""


@keys.command("rotate")
@click.option("--alg", type=click.Choice(["ES256", "RS256"]), default="ES256", show_default=True)
@click.option(
    "--now",
    "immediately",
    is_flag=True,
    help="Sign with the new key at once (a compromised key), not after propagation.",
)
@click.option(
    "--if-older-than",
    "older_than",
    help="Only when the newest key of --alg is at least this old (30d, 12h, seconds): cron.",
)
@click.option("--operator", help="Who rotates (kept in the audit trail).")
def keys_rotate(alg: str, immediately: bool, older_than: str | None, operator: str | None) -> None:
    """Publish a new key; it signs after every cache has seen it (at once when no key of the
    algorithm signs yet), and the old key stays published until its tokens expire. With
    --if-older-than it is safe to run from cron (on several replicas at once): a young key is
    left alone."""
    max_age = parse_age(older_than)
    app = _app()
    with app.app_context():
        keys = app.extensions["idp.services"].keys
        activate_in = 0 if immediately else None
        if max_age is None:
            kid = keys.rotate(alg, activate_in=activate_in, operator=operator)
        else:
            kid = keys.rotate_if_older(alg, max_age, activate_in=activate_in, operator=operator)
        delay = keys.signs_in(kid) if kid is not None else None
    if kid is None:
        click.echo(json.dumps({"kid": None, "alg": alg, "rotated": False}))
        return
    click.echo(json.dumps({"kid": kid, "alg": alg, "signs_in_seconds": delay, "rotated": True}))


@keys.command("ensure")
def keys_ensure() -> None:
    """Create an ES256 and an RS256 key if there is none (used by `make run`)."""
    app = _app()
    with app.app_context():
        created = app.extensions["idp.services"].keys.ensure_keys()
    click.echo(json.dumps({"created": created}))


@keys.command("list")
def keys_list() -> None:
    app = _app()
    with app.app_context():
        for key in app.extensions["idp.services"].keys.list_keys():
            click.echo(
                json.dumps(
                    {
                        "kid": key.kid,
                        "alg": key.alg,
                        "created_at": key.created_at,
                        "retired_at": key.retired_at,
                        "publish_until": key.publish_until,
                    }
                )
            )


@main.group()
def clients() -> None:
    """Relying parties."""


def client_json(client, secret=None) -> dict:
    body = {
        "client_id": client.client_id,
        "name": client.name,
        "public": client.public,
        "first_party": client.first_party,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "grant_types": client.grant_types,
        "scope": " ".join(client.scopes),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "backchannel_logout_uri": client.backchannel_logout_uri,
        "id_token_signed_response_alg": client.id_token_signed_response_alg,
    }
    if secret:
        body["client_secret"] = secret
    return body


@clients.command("create")
@click.option("--name", required=True)
@click.option("--redirect-uri", "redirect_uris", multiple=True)
@click.option("--public", is_flag=True, help="A browser or native app without a secret.")
@click.option("--first-party", is_flag=True, help="A company portal: no consent page.")
@click.option(
    "--grant-type",
    "grant_types",
    multiple=True,
    type=click.Choice(["authorization_code", "refresh_token", "client_credentials"]),
)
@click.option("--scope", "scopes", multiple=True, help="Repeat, or give a space-separated list.")
@click.option("--backchannel-logout-uri")
@click.option("--post-logout-redirect-uri", "logout_uris", multiple=True)
@click.option(
    "--auth-method",
    type=click.Choice(["client_secret_basic", "client_secret_post", "private_key_jwt"]),
)
@click.option(
    "--jwks-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Public JWK Set of a private_key_jwt client.",
)
@click.option("--id-token-alg", type=click.Choice(["ES256", "RS256"]), default="ES256")
@click.option("--operator", help="Who registers it (kept in the audit trail).")
def clients_create(
    name,
    redirect_uris,
    public,
    first_party,
    grant_types,
    scopes,
    backchannel_logout_uri,
    logout_uris,
    auth_method,
    jwks_file,
    id_token_alg,
    operator,
):
    """Register a client; prints JSON with client_id (and client_secret, shown only once)."""
    jwks = None
    if jwks_file:
        try:
            jwks = json.loads(jwks_file.read_text())
        except ValueError as exc:
            raise click.ClickException(f"--jwks-file is not JSON: {exc}") from None
    scope_list = [s for item in scopes for s in item.split()]
    app = _app()
    with app.app_context():
        try:
            created = app.extensions["idp.services"].clients.create(
                name=name,
                redirect_uris=redirect_uris,
                public=public,
                first_party=first_party,
                grant_types=grant_types,
                scopes=scope_list,
                backchannel_logout_uri=backchannel_logout_uri,
                post_logout_redirect_uris=logout_uris,
                auth_method=auth_method,
                jwks=jwks,
                id_token_alg=id_token_alg,
                operator=operator,
            )
        except IdpError as exc:
            raise _fail(exc) from None
        click.echo(json.dumps(client_json(created.client, created.secret), ensure_ascii=False))


@clients.command("list")
def clients_list() -> None:
    app = _app()
    with app.app_context():
        for client in app.extensions["idp.services"].clients.list():
            click.echo(json.dumps(client_json(client), ensure_ascii=False))


@clients.command("rotate-secret")
@click.argument("client_id")
@click.option("--operator", help="Who rotates (kept in the audit trail).")
def clients_rotate_secret(client_id, operator) -> None:
    """A new client_secret (printed once); the old one is refused by every replica within
    a second (IDP_REDIS_URL carries the change)."""
    app = _app()
    with app.app_context():
        try:
            secret = app.extensions["idp.services"].clients.rotate_secret(
                client_id, operator=operator
            )
        except IdpError as exc:
            raise _fail(exc) from None
        click.echo(json.dumps({"client_id": client_id, "client_secret": secret}))


@clients.command("delete")
@click.argument("client_id")
@click.option("--operator", help="Who deletes (kept in the audit trail).")
def clients_delete(client_id, operator) -> None:
    """Remove a client with its codes, tokens and consents."""
    app = _app()
    with app.app_context():
        try:
            app.extensions["idp.services"].clients.delete(client_id, operator=operator)
        except IdpError as exc:
            raise _fail(exc) from None


@main.group()
def users() -> None:
    """Accounts."""


@users.command("create")
@click.option("--login", required=True, help="Mobile phone (any notation) or e-mail.")
@click.option("--family-name", required=True)
@click.option("--given-name", required=True)
@click.option("--middle-name")
@click.option(
    "--password-stdin",
    is_flag=True,
    required=True,
    help="Read the password from the first line of standard input.",
)
@click.option("--operator", help="Who creates it (kept in the audit trail).")
def users_create(login, family_name, given_name, middle_name, password_stdin, operator):
    """Create an account with a confirmed login; prints JSON with its sub."""
    password = sys.stdin.readline().rstrip("\r\n")
    app = _app()
    with app.app_context():
        try:
            user = app.extensions["idp.services"].users.create(
                login=login,
                family_name=family_name,
                given_name=given_name,
                middle_name=middle_name,
                password=password,
                operator=operator,
            )
        except IdpError as exc:
            raise _fail(exc) from None
        click.echo(
            json.dumps(
                {"sub": user.id, "email": user.email, "phone_number": user.phone},
                ensure_ascii=False,
            )
        )


@main.command("demo")
@click.option(
    "--shop-url", help="Base URL of the «Интернет-магазин» portal (http://127.0.0.1:8081)."
)
@click.option("--tv-url", help="Base URL of the «Домашнее ТВ» portal (http://127.0.0.1:8082).")
def demo(shop_url: str | None, tv_url: str | None) -> None:
    """Create the demo client and demo user if missing (idempotent; used by `make run`, which
    passes where it serves the portals)."""
    from idp.demo import ensure_demo, portal_urls

    app = _app()
    with app.app_context():
        try:
            click.echo(ensure_demo(app, portal_urls(shop_url, tv_url)))
        except IdpError as exc:
            raise _fail(exc) from None


@main.command("linking-events")
@click.option("--once", is_flag=True, help="Process what is there and stop.")
@click.option("--wait", default=5.0, show_default=True, help="Seconds to wait for new events.")
def linking_events(once: bool, wait: float) -> None:
    """Tell previous holders that a billing account moved (consumes the linking service's
    event stream from a stored cursor; needs IDP_LINKING_TARGET). SIGTERM or SIGINT stop it
    after the batch in hand; a long poll in flight is cancelled."""
    import threading

    import grpc

    from idp.adapters.linking_grpc import GrpcLinkingClient
    from idp.logredact import configure_logging
    from idp.services.link_events import TRANSIENT, LinkEventNotifier
    from idp.shutdown import StopSignal

    settings = _settings()
    # A deployed process: its warnings go through the redacting filter.
    configure_logging(log_format=settings.log_format)
    stop = StopSignal()
    app = _app(settings)
    client = app.extensions["idp.linking"]
    if not isinstance(client, GrpcLinkingClient):
        raise click.ClickException("IDP_LINKING_TARGET is not set")
    _serve_metrics(settings)  # its own, like `idp worker`'s: what Prometheus scrapes

    def cancel_on_stop() -> None:
        # Events fetched by a cancelled call were not handled: the stored cursor brings them
        # again next time.
        stop.wait()
        client.stop_events()

    threading.Thread(target=cancel_on_stop, name="stop", daemon=True).start()
    with app.app_context():
        from idp.extensions import db

        services = app.extensions["idp.services"]
        notifier = LinkEventNotifier(
            db.session, services.store, services.delivery, uow=services.uow, audit=services.audit
        )
        while not stop.is_set():
            try:
                events = client.events(notifier.cursor(), wait=wait)
            except grpc.RpcError as exc:
                if stop.is_set():
                    break
                # The linking service restarting or not up yet: try again, never give up.
                if once:
                    raise click.ClickException(f"linking service: {exc.code()}") from None
                click.echo(f"linking service unavailable ({exc.code()}); retrying", err=True)
                stop.wait(wait)
                continue
            try:
                sent = notifier.handle(events)
            except TRANSIENT as exc:
                # The database or the store is down: not the event's fault; wait, then retry.
                if once:
                    raise click.ClickException(f"not processed: {type(exc).__name__}") from None
                click.echo(f"storage unavailable ({type(exc).__name__}); retrying", err=True)
                stop.wait(wait)
                continue
            if events:
                click.echo(
                    json.dumps(
                        {"events": len(events), "notices": sent, "cursor": notifier.cursor()}
                    )
                )
            if once:
                break
            if notifier.stalled:
                stop.wait(min(wait, 1.0))  # retry the failed event a little later


WORKER_STOP_DEADLINE = 10.0  # seconds after SIGTERM: a gateway call in flight may finish


@main.command("worker")
@click.option("--once", is_flag=True, help="Deliver what is due now and stop.")
@click.option("--poll", default=0.5, show_default=True, help="Seconds between polls.")
@click.option("--max-attempts", default=8, show_default=True, help="Attempts before dead.")
@click.option("--backoff", default=2.0, show_default=True, help="First retry delay (doubles).")
@click.option(
    "--attach-every",
    default=30.0,
    show_default=True,
    help="Seconds between retries of automatic attachments the linking service missed.",
)
def worker(once: bool, poll: float, max_attempts: int, backoff: float, attach_every: float) -> None:
    """Deliver the outbox: SMS, e-mail and back-channel logout, after their transactions
    commit, with retries; several workers may run at once. Also retries the automatic
    attachment of accounts confirmed while the linking service was away. Stops cleanly on
    SIGTERM/SIGINT."""
    from idp import build_worker
    from idp.logredact import configure_logging
    from idp.services.auto_attach import sweep_until
    from idp.services.outbox_worker import RetryPolicy
    from idp.shutdown import StopSignal, exit_after

    settings = _settings()
    # A deployed process: its warnings go through the redacting filter.
    configure_logging(log_format=settings.log_format)
    stop = StopSignal()  # the handler only records; a lane finishes the row it is sending
    app = _app(settings)
    policy = RetryPolicy(max_attempts=max_attempts, backoff=backoff)
    outbox = build_worker(app, policy=policy, poll=poll)
    # Without a linking service the twin would answer "nothing found" and end every pending
    # search: retries run only against a configured one.
    retry = (
        app.extensions["idp.services"].auto_attach.retry_pending
        if app.extensions["idp.settings"].linking_target
        else None
    )
    if once:
        with app.app_context():
            result = {"handled": outbox.run_once()}
            if retry is not None:
                result["auto_attached"] = retry()
            click.echo(json.dumps(result))
        return
    _serve_metrics(settings)  # its own: deliveries, codes sent, the outbox's lag
    click.echo(f"outbox worker started (poll {poll}s)", err=True)
    threading.Thread(target=_exit_when_stopped, args=(stop, exit_after), daemon=True).start()
    if retry is not None:
        threading.Thread(
            target=sweep_until,
            args=(retry, stop, attach_every, app.app_context),
            name="auto-attach",
            daemon=True,
        ).start()
    else:
        click.echo("automatic attachment retries off: IDP_LINKING_TARGET is not set", err=True)
    outbox.run(stop)


def _exit_when_stopped(stop, exit_after) -> None:
    """Once signalled, give the lanes a deadline to finish the send in flight (a row whose
    send is cut short is sent again after its lease, with the same message id)."""
    stop.wait()
    exit_after(WORKER_STOP_DEADLINE, "idp worker: did not stop in time; exiting")


@main.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Serve the app for development and tests (production: gunicorn 'idp.wsgi:app').

    SIGTERM or SIGINT stop it gracefully: the listening socket closes at once (new
    connections are refused), requests in flight are answered, and the process exits within
    SERVE_STOP_DEADLINE seconds whatever still runs."""
    import threading

    from werkzeug.serving import make_server

    from idp.logging_setup import RedactingRequestHandler
    from idp.logredact import configure_logging
    from idp.shutdown import InFlight, StopSignal, exit_after

    stop = StopSignal()
    settings = _settings()
    # Before the app exists, so Flask finds a (redacting) handler and adds none of its own.
    configure_logging(log_format=settings.log_format)
    in_flight = InFlight()

    class DrainedRequestHandler(RedactingRequestHandler):
        # From its ``100 Continue`` to the last byte of the answer: a request the client saw
        # accepted is one the drain waits for.
        def run_wsgi(self):
            with in_flight.request():
                super().run_wsgi()

        def handle_expect_100(self):
            # http.server would send a first ``100 Continue`` before run_wsgi (werkzeug
            # sends its own there): one, from inside the counted part, is enough.
            return True

    server = make_server(
        host, port, _app(settings), threaded=True, request_handler=DrainedRequestHandler
    )
    _serve_metrics(settings)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    click.echo(f" * IdP serving on http://{host}:{server.port}", err=True)
    stop.wait()
    # Whatever non-daemon thread the app left behind, the process ends soon after the signal.
    exit_after(SERVE_STOP_DEADLINE, "idp serve: did not stop in time; exiting")
    server.shutdown()
    server.server_close()
    # Margin for the answers to be written once the app has returned them.
    if not in_flight.drain(SERVE_STOP_DEADLINE - 1):
        click.echo("idp serve: requests still in flight at the deadline", err=True)


main.add_command(legacy)
main.add_command(audit)
main.add_command(support)
main.add_command(purge)

if __name__ == "__main__":  # pragma: no cover
    main()

"""Operations commands of ``idp``: the audit export, the support desk, housekeeping.

``idp audit export --since ISO [--until ISO] [--subject ID|LOGIN]`` — JSON Lines on stdout.
``idp support --operator NAME find|show|unlock|end-sessions|block|unblock ACCOUNT`` — ACCOUNT
is a phone (any notation), an e-mail or the account's id; every action is audited with NAME.
``idp purge [--batch N]`` — delete expired records in batches (cron; safe on two replicas).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click

from idp.domain.errors import IdpError


def _app():
    from idp.cli import _app as build

    return build()


def parse_moment(value: str, option: str) -> int:
    """An ISO 8601 date or date-time (UTC when no offset is given) → seconds since epoch."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date or date-time", param_hint=option
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def parse_age(value: str | None) -> int | None:
    """``30d``, ``12h``, ``90m`` or plain seconds → seconds."""
    if value is None:
        return None
    units = {"d": 86400, "h": 3600, "m": 60, "s": 1}
    text = value.strip().lower()
    number, unit = (text[:-1], units[text[-1]]) if text[-1:] in units else (text, 1)
    if not number.isdigit() or int(number) < 1:
        raise click.BadParameter(f"{value!r} is not an age like 30d, 12h or 3600")
    return int(number) * unit


def iso(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=UTC).isoformat().replace("+00:00", "Z")


# --- audit ---------------------------------------------------------------------------------


@click.group()
def audit() -> None:
    """The security audit trail."""


@audit.command("export")
@click.option("--since", required=True, help="ISO 8601 date or date-time (UTC by default).")
@click.option("--until", help="ISO 8601; events before this moment (default: now).")
@click.option("--subject", help="The account's id, or its phone or e-mail.")
def audit_export(since: str, until: str | None, subject: str | None) -> None:
    """Print the events from --since to --until as JSON Lines, in the order written."""
    start = parse_moment(since, "--since")
    end = parse_moment(until, "--until") if until else None
    if end is not None and end <= start:
        raise click.BadParameter("--until must be after --since", param_hint="--until")
    app = _app()
    with app.app_context():
        services = app.extensions["idp.services"]
        sub = None
        if subject:
            user = services.users.get(subject.strip()) or services.users.find_any(subject)
            if user is None:
                raise click.ClickException("no account has this id, phone or e-mail")
            sub = user.id
        for event in services.audit.export(start, end, sub):
            row = event.as_json()
            row["time"] = iso(event.at)
            click.echo(json.dumps(row, ensure_ascii=False))


# --- support desk --------------------------------------------------------------------------


@click.group()
@click.option("--operator", required=True, help="Your name: recorded with every action.")
@click.pass_context
def support(ctx: click.Context, operator: str) -> None:
    """The support desk: find an account, see it, and act on it (every action audited)."""
    if not operator.strip():
        raise click.BadParameter("must not be empty", param_hint="--operator")
    ctx.obj = {"operator": operator.strip()}


def _support(ctx: click.Context, action: str, account: str, **kw):
    app = _app()
    with app.app_context():
        method = getattr(app.extensions["idp.services"].support, action)
        try:
            result = method(account, ctx.obj["operator"], **kw)
        except IdpError as exc:
            raise click.ClickException(str(exc)) from None
        return result, _account_json(result.user if hasattr(result, "user") else result)


def _account_json(user) -> dict:
    return {
        "sub": user.id,
        "family_name": user.family_name,
        "given_name": user.given_name,
        "middle_name": user.middle_name,
        "phone_number": user.phone,
        "phone_number_verified": user.phone_verified,
        "email": user.email,
        "email_verified": user.email_verified,
        "status": user.status,
        "blocked_at": iso(user.blocked_at),
        "created_at": iso(user.created_at),
    }


def _echo(body: dict) -> None:
    click.echo(json.dumps(body, ensure_ascii=False))


@support.command("find")
@click.argument("account")
@click.pass_context
def support_find(ctx, account: str) -> None:
    """The account with this phone (any notation), e-mail or id."""
    _, body = _support(ctx, "show", account)
    _echo(body)


@support.command("show")
@click.argument("account")
@click.pass_context
def support_show(ctx, account: str) -> None:
    """The account, its live sessions and its lockout state."""
    state, body = _support(ctx, "show", account)
    body["lockout"] = {"failures": state.failures, "locked_for_seconds": state.locked_for}
    body["sessions"] = [
        {
            "id": s.id,
            "created_at": iso(s.created_at),
            "last_seen_at": iso(s.last_seen_at),
            "expires_at": iso(s.expires_at),
            "ip": s.ip,
            "user_agent": s.user_agent,
            "amr": s.amr,
        }
        for s in state.sessions
    ]
    _echo(body)


@support.command("unlock")
@click.argument("account")
@click.pass_context
def support_unlock(ctx, account: str) -> None:
    """Lift a sign-in lockout."""
    _, body = _support(ctx, "unlock", account)
    _echo({"sub": body["sub"], "unlocked": True})


@support.command("end-sessions")
@click.argument("account")
@click.pass_context
def support_end_sessions(ctx, account: str) -> None:
    """End every session of the account and revoke its tokens."""
    app = _app()
    with app.app_context():
        support = app.extensions["idp.services"].support
        try:
            user = support.find(account, ctx.obj["operator"])
            ended = support.end_sessions(user.id, ctx.obj["operator"])
        except IdpError as exc:
            raise click.ClickException(str(exc)) from None
        _echo({"sub": user.id, "sessions_ended": ended})


@support.command("block")
@click.argument("account")
@click.option("--reason", help="Why (kept in the audit trail; no secrets).")
@click.pass_context
def support_block(ctx, account: str, reason: str | None) -> None:
    """Block the account: no sign-in, sessions ended, tokens revoked."""
    _, body = _support(ctx, "block", account, reason=reason)
    _echo({"sub": body["sub"], "blocked_at": body["blocked_at"]})


@support.command("unblock")
@click.argument("account")
@click.pass_context
def support_unblock(ctx, account: str) -> None:
    """Let a blocked account sign in again."""
    _, body = _support(ctx, "unblock", account)
    _echo({"sub": body["sub"], "blocked_at": None})


# --- housekeeping --------------------------------------------------------------------------


@click.command("purge")
@click.option("--batch", default=1000, show_default=True, type=click.IntRange(1, 100_000))
def purge(batch: int) -> None:
    """Delete expired flows, codes, sessions and tokens, old outbox rows and old audit
    events, BATCH rows per transaction (a cron job; replicas may run it at once)."""
    app = _app()
    with app.app_context():
        deleted = app.extensions["idp.services"].housekeeping.purge(batch)
    _echo({"deleted": deleted})

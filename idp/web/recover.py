"""«Восстановить пароль»: the same answer whether or not the contact has an account."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext

from idp.domain.contacts import parse_login
from idp.domain.errors import ValidationError
from idp.ports import DeliveryFailed
from idp.services.carried_authorization import carried_by
from idp.services.delivery import SmsRefused, mask_contact
from idp.services.verification import SecretRejected
from idp.web import client_address, services
from idp.web.carry import (
    carried_from_request,
    client_name,
    interaction_uid,
    mark_started_here,
    started_here,
    to_sign_in,
)
from idp.web.forms import (
    ERRORS,
    captcha_needed,
    captcha_ok,
    captcha_shown,
    captcha_status,
    confirm_code_step,
    flow_id,
    forget_flow,
    new_captcha,
    password_error,
    remember_flow,
    resend_step,
    secret_error,
)

bp = Blueprint("recover", __name__)


def _form(login="", errors=None, status=200, captcha=False):
    """The first step. A picture is shown when ``captcha`` asks for one, when the policy
    already wants one from this address, or after a wrong answer."""
    needs = captcha or captcha_needed(None) or bool(errors and "captcha" in errors)
    picture = new_captcha() if needs else None
    throttled, headers = captcha_status(picture)
    carried = carried_from_request()
    return (
        render_template(
            "recover/start.html",
            login=login,
            errors=errors or {},
            captcha=picture,
            interaction=interaction_uid(),
            client_name=client_name(carried.client_id if carried else None),
        ),
        throttled or status,
        headers,
    )


@bp.get("/recover")
def start():
    return _form()


@bp.post("/recover")
def submit():
    login = request.form.get("login", "")
    try:
        kind, value = parse_login(login)
    except ValidationError:
        return _form(login, {"login": ERRORS["login"]}, 400)
    policy = services().captcha_policy
    policy.note_attempt(client_address(), value)
    if captcha_needed(value, value if kind == "phone" else None):
        if not captcha_shown(request.form):
            # The first picture for this person: its prompt only, no "wrong code".
            return _form(login, status=400, captcha=True)
        if not captcha_ok(request.form):
            return _form(login, {"captcha": ERRORS["captcha"]}, 400)
    try:
        flow = services().recovery.start(
            login, client_address(), authorization=carried_from_request()
        )
    except (SmsRefused, DeliveryFailed):
        return _form(
            login, {"login": gettext("Не удалось отправить сообщение. Попробуйте позже.")}, 503
        )
    if kind == "phone":
        policy.note_sms(value)
    remember_flow("recover", flow.id)
    mark_started_here("recover", flow.id)
    if kind == "phone":
        return redirect(url_for("recover.confirm"), code=303)
    return render_template("recover/sent.html", masked=mask_contact(value))


def _flow():
    return services().recovery.get(flow_id("recover"))


@bp.route("/recover/confirm", methods=["GET", "POST"])
def confirm():
    return confirm_code_step(services().recovery, _flow(), "recover", "recover.password")


@bp.post("/recover/resend")
def resend():
    return resend_step(services().recovery, _flow(), "recover")


@bp.route("/recover/<token>", methods=["GET", "POST"])
def link(token: str):
    if request.method == "GET":
        row = services().verifier.find_by_link(token)
        return render_template("recover/link.html", token=token, valid=row is not None)
    try:
        flow = services().recovery.confirm_link(token)
    except SecretRejected as exc:
        return render_template(
            "recover/link.html", token=token, valid=False, error=secret_error(exc)
        ), 400
    remember_flow("recover", flow.id)
    return redirect(url_for("recover.password"), code=303)


@bp.route("/recover/password", methods=["GET", "POST"])
def password():
    flow = _flow()
    if flow.state != "confirmed":
        return redirect(url_for("recover.confirm"), code=303)
    error, status = None, 200
    if request.method == "POST":
        try:
            services().recovery.reset(flow.id, request.form.get("password", ""))
        except ValidationError as exc:
            error, status = password_error(exc), 400
        else:
            forget_flow("recover")
            # No automatic sign-in after a reset (OWASP Forgot Password Cheat Sheet); signing
            # in completes the portal's request that sent the person here, if any.
            return to_sign_in(carried_by(flow.payload), started_here("recover", flow.id), reset="1")
    return render_template("recover/password.html", error=error), status

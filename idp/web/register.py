"""Registration pages: step 1 «Регистрация», step 2 «Подтвердите операцию» / the letter and
the password, step 3 the main page; the legacy-cabinet upgrade; e-mail link confirmation."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import gettext, lazy_gettext

from idp.domain.contacts import parse_login
from idp.domain.errors import Conflict, ValidationError
from idp.domain.regions import REGIONS
from idp.ports import DeliveryFailed
from idp.services.authentication import PASSWORD_ACR
from idp.services.carried_authorization import carried_by
from idp.services.delivery import SmsRefused, mask_contact
from idp.services.social import AlreadyLinked, amr_for
from idp.services.verification import SecretRejected
from idp.web import client_address, services
from idp.web.carry import (
    after_sign_in,
    carried_from_request,
    client_name,
    interaction_uid,
    mark_started_here,
    started_here,
    to_sign_in,
)
from idp.web.cookies import cookie_name, set_session_cookie
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
from idp.web.social import provider_name

bp = Blueprint("register", __name__)

DELIVERY_FAILED = lazy_gettext("Не удалось отправить сообщение. Попробуйте позже.")


def _social_pending() -> dict | None:
    """The social sign-up this browser came back with (names and contact to prefill)."""
    return services().social.pending(session.get("social_pending"))


def _step1(form=None, errors=None, status=200, captcha=False):
    """Step 1. A picture is shown when ``captcha`` asks for one, when the policy already
    wants one from this address, or after a wrong answer."""
    form = form or {}
    social = _social_pending()
    needs = captcha or captcha_needed(None) or bool(errors and "captcha" in errors)
    picture = new_captcha() if needs else None
    throttled, headers = captcha_status(picture)
    carried = social["authorization"] if social else carried_from_request()
    return (
        render_template(
            "register/step1.html",
            form=form,
            errors=errors or {},
            regions=REGIONS,
            captcha=picture,
            social_provider=provider_name(social["profile"].provider) if social else None,
            interaction=interaction_uid(),
            client_name=client_name(carried.client_id if carried else None),
        ),
        throttled or status,
        headers,
    )


@bp.get("/register")
def start():
    social = _social_pending()
    if social is None:
        return _step1()
    profile = social["profile"]
    # Prefilled from the provider; the contact is confirmed by our own code or link all the same.
    return _step1(
        {
            "family_name": profile.family_name or "",
            "given_name": profile.given_name or "",
            "contact": profile.phone or profile.email or "",
        }
    )


@bp.post("/register")
def submit():
    form = request.form
    if form.get("captcha_refresh"):
        # «Другая картинка»: the same page with a new picture; nothing is submitted.
        return _step1(form, captcha=True)
    contact = form.get("contact", "")
    try:
        kind, value = parse_login(contact)
    except ValidationError:
        kind, value = None, None
    policy = services().captcha_policy
    policy.note_attempt(client_address(), value)
    if captcha_needed(value, value if kind == "phone" else None):
        if not captcha_shown(form):
            # The first picture for this person: its prompt only, no "wrong code".
            return _step1(form, status=400, captcha=True)
        if not captcha_ok(form):
            return _step1(form, {"captcha": ERRORS["captcha"]}, 400)
    social = _social_pending()
    try:
        started = services().registration.start(
            form.get("family_name", ""),
            form.get("given_name", ""),
            form.get("middle_name"),
            form.get("region", ""),
            contact,
            form.get("accept") == "1",
            client_address(),
            social=services().social.flow_payload(social["profile"]) if social else None,
            # The portal's request that sent the person here (or to the provider first),
            # carried by the flow.
            authorization=(social["authorization"] if social else carried_from_request()),
        )
    except ValidationError as exc:
        return _step1(form, {exc.field or "contact": ERRORS.get(exc.field or "contact")}, 400)
    except SmsRefused:
        return _step1(
            form, {"contact": gettext("Отправка SMS на этот номер сейчас невозможна.")}, 429
        )
    except DeliveryFailed:
        return _step1(form, {"contact": str(DELIVERY_FAILED)}, 503)
    if kind == "phone":
        policy.note_sms(value)
    if social:
        services().social.drop_pending(session.pop("social_pending", None))
    remember_flow("register", started.flow.id)
    mark_started_here("register", started.flow.id)
    if started.legacy:
        return redirect(url_for("register.legacy"), code=303)
    if kind == "phone":
        return redirect(url_for("register.confirm"), code=303)
    return redirect(url_for("register.letter_sent"), code=303)


def _flow():
    return services().registration.get(flow_id("register"))


@bp.route("/register/confirm", methods=["GET", "POST"])
def confirm():
    return confirm_code_step(
        services().registration,
        _flow(),
        "register",
        "register.password",
        change_url=url_for("register.start"),
    )


@bp.post("/register/resend")
def resend():
    return resend_step(
        services().registration, _flow(), "register", change_url=url_for("register.start")
    )


@bp.get("/register/sent")
def letter_sent():
    flow = _flow()
    return render_template("register/sent.html", masked=mask_contact(flow.contact_value))


@bp.route("/confirm/<token>", methods=["GET", "POST"])
def confirm_link(token: str):
    """A GET only shows a button (mail scanners change nothing); the POST confirms."""
    row = services().verifier.find_by_link(token)
    if request.method == "GET":
        return render_template("register/link.html", token=token, valid=row is not None)
    if row is None:
        return render_template("register/link.html", token=token, valid=False), 400
    try:
        if row.purpose == "change_contact":
            services().profile.confirm_contact_link(token, client_address())
            return redirect(url_for("profile.show", changed="1"), code=303)
        confirmed = services().registration.confirm_link(token)
    except SecretRejected as exc:
        return render_template(
            "register/link.html", token=token, valid=False, error=secret_error(exc)
        ), 400
    except Conflict:
        return render_template("register/link.html", token=token, valid=False), 409
    remember_flow("register", confirmed.id)
    return redirect(url_for("register.password"), code=303)


@bp.route("/register/password", methods=["GET", "POST"])
def password():
    flow = _flow()
    if flow.state != "confirmed":
        return redirect(
            url_for("register.confirm" if flow.state == "code_sent" else "register.letter_sent"),
            code=303,
        )
    error, status = None, 200
    social = flow.payload.get("social")
    if request.method == "POST":
        # A social sign-up may go on without a password: it signs in with its provider.
        chosen = None if social and request.form.get("skip") else request.form.get("password", "")
        try:
            user = services().registration.complete(flow.id, chosen)
        except ValidationError as exc:
            error, status = password_error(exc), 400
        except Conflict:
            forget_flow("register")
            return render_template(
                "error.html",
                status=409,
                message=gettext(
                    "Не удалось завершить регистрацию: эти контактные данные уже заняты. "
                    "Войдите или восстановите пароль."
                ),
            ), 409
        else:
            forget_flow("register")
            carried, here = carried_by(flow.payload), started_here("register", flow.id)
            opened = services().sessions.open(
                user,
                amr=amr_for(social["provider"]) if social else ["pwd"],
                acr=PASSWORD_ACR,
                remember=False,
                ip=client_address(),
                user_agent=request.headers.get("User-Agent"),
                previous_cookie=request.cookies.get(cookie_name()),
            )
            session.clear()
            # Sent by a portal: back to it with its code; else step 3, the main page.
            response = after_sign_in(carried, here, welcome="1")
            set_session_cookie(response, opened)
            return response
    return render_template(
        "register/password.html",
        error=error,
        masked=mask_contact(flow.contact_value),
        social=bool(social),
    ), status


@bp.route("/register/legacy", methods=["GET", "POST"])
def legacy():
    flow = _flow()
    try:
        return _legacy(flow)
    except AlreadyLinked:
        # The social sign-up's identity was linked to another account meanwhile: no upgrade.
        forget_flow("register")
        return render_template(
            "error.html", status=409, message=gettext("Эту соцсеть уже нельзя привязать.")
        ), 409


def _legacy(flow):
    error, status = None, 200
    if request.method == "POST" and not request.form.get("captcha_refresh"):
        if not captcha_shown(request.form):
            status = 400  # the page had no picture (too many): one now, and no "wrong code"
        elif not captcha_ok(request.form):
            error, status = ERRORS["captcha"], 400
        elif services().registration.upgrade_legacy(
            flow.id, request.form.get("password", ""), request.form.get("use_typed_names") == "1"
        ):
            forget_flow("register")
            names = "typed" if request.form.get("use_typed_names") == "1" else "kept"
            return to_sign_in(
                carried_by(flow.payload), started_here("register", flow.id), upgraded=names
            )
        else:
            error, status = "wrong_password", 400
    picture = new_captcha(flow.id)
    throttled, headers = captcha_status(picture)
    return (
        render_template(
            "register/legacy.html",
            error=error,
            masked=mask_contact(flow.contact_value),
            captcha=picture,
            typed=services().registration.typed_names(flow),
            use_typed=request.form.get("use_typed_names") == "1",
        ),
        throttled or status,
        headers,
    )

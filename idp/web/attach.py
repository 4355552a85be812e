"""«Привязка лицевого счета»: the four-step wizard of the help pages, over the linking
service's flow (:mod:`idp.services.cabinet`).

The flow id and the step-1 data (never a password or PIN) live in the Flask session, so a
refresh, «Назад», a step opened out of order or a second tab each land on the step the
service's flow is really at (``_goto``). Every form carries the CSRF token.
"""

from __future__ import annotations

from functools import wraps

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import gettext, lazy_gettext

from idp.domain import linking as dom
from idp.domain.errors import LinkingFailed, ValidationError
from idp.domain.regions import REGIONS
from idp.services.cabinet import Lookup, Person, parse_lookup
from idp.web import services
from idp.web.cookies import current_session
from idp.web.forms import flow_id, forget_flow, remember_flow

bp = Blueprint("attach", __name__, url_prefix="/account/attach")

FLOW = "attach"
LOOKUP = "attach:lookup"
TYPED = "attach:typed"
PROOF = "attach:proof"  # step 3 as typed, less the password or PIN
STEP_FIELDS = ("region", "account_number", "phone_number", "service_login", "service_type")

FIELD_ERRORS = {
    "region": lazy_gettext("Выберите регион из списка."),
    "lookup": lazy_gettext("Укажите что-то одно: № лицевого счёта, № телефона или логин услуги."),
    "account_number": lazy_gettext("Номер лицевого счёта — 12 цифр из договора."),
    "phone_number": lazy_gettext("Укажите номер телефона, например +7 342 212-34-56."),
    "service_login": lazy_gettext("Логин услуги слишком длинный."),
    "service_type": lazy_gettext("Выберите услугу."),
    "login": lazy_gettext("Укажите логин."),
    "password": lazy_gettext("Укажите пароль."),
    "proof_phone": lazy_gettext("Укажите номер домашнего телефона, например +7 342 212-34-56."),
    "pin": lazy_gettext("Укажите PIN-код."),
}
UNAVAILABLE = lazy_gettext(
    "Сервис лицевых счетов сейчас недоступен. Введённые данные сохранены — "
    "попробуйте ещё раз через несколько минут."
)
LINKING_ERRORS = {
    "CONCURRENT_CHANGE": lazy_gettext(
        "Пока вы заполняли данные, лицевой счёт изменился. Начните привязку заново."
    ),
    "FLOW_EXPIRED": lazy_gettext("Время на привязку истекло. Начните заново."),
    "FLOW_NOT_FOUND": lazy_gettext("Время на привязку истекло. Начните заново."),
    "INVALID_ACCOUNT_NUMBER": FIELD_ERRORS["account_number"],
    "INVALID_REGION": FIELD_ERRORS["region"],
    "INVALID_PHONE": FIELD_ERRORS["phone_number"],
    "INVALID_LOGIN": lazy_gettext("Проверьте логин услуги."),
}
REFUSED = lazy_gettext(
    "Лицевой счёт не привязан: указанные данные не подтверждают право управления "
    "лицевым счётом. Проверьте данные из договора и попробуйте снова."
)


def linking_message(exc: LinkingFailed) -> str:
    """A plain sentence for a linking error; never the status or reason name."""
    if exc.reason == "TOO_MANY_ATTEMPTS":
        minutes = max(1, -(-(exc.retry_after or 60) // 60))
        return gettext(
            "Слишком много попыток. Попробуйте снова через %(minutes)s мин.", minutes=minutes
        )
    return str(LINKING_ERRORS.get(exc.reason, UNAVAILABLE))


def _person() -> Person | None:
    sso = current_session()
    return Person(sso.user_id, sso.id) if sso else None


def _lookup() -> Lookup | None:
    return Lookup.from_dict(session.get(LOOKUP))


def _progress(step: int) -> list[tuple[str, str]]:
    """The bar's four steps as ``(label, done|current|todo)``: every step before ``step`` is
    ticked (step 2 too when a service login skipped it)."""
    labels = [
        gettext("Данные лицевого счёта"),
        gettext("Выбор услуги для привязки"),
        gettext("Данные услуги"),
        gettext("Результат"),
    ]
    return [
        (label, "done" if number < step else "current" if number == step else "todo")
        for number, label in enumerate(labels, start=1)
    ]


def _page(template: str, step: int, status: int = 200, **context):
    person = _person()
    return (
        render_template(
            f"attach/{template}.html",
            progress=_progress(step),
            regions=REGIONS,
            # The login link at the top right, as on the main page (the help pages' way to
            # «Персональная информация»).
            who=services().users.get(person.user_id) if person else None,
            **context,
        ),
        status,
    )


def _step1(status: int = 200, form=None, errors=None, message=None):
    return _page(
        "step1",
        1,
        status,
        form=form or session.get(TYPED, {}),
        errors=errors or {},
        message=message,
    )


def _goto(flow: dom.AttachmentFlow):
    """Where the flow is: step 2, step 3 or the result."""
    if flow.state == dom.CHOOSE_SERVICE:
        return redirect(url_for("attach.service"), code=303)
    if flow.state == dom.PROVE or (
        flow.state == dom.REFUSED and flow.refusal_reason == dom.PROOF_FAILED
    ):
        return redirect(url_for("attach.proof"), code=303)
    return redirect(url_for("attach.result"), code=303)


def _current(person: Person):
    """The flow in this session, or a response: step 1 (none or expired) or a message."""
    current = flow_id(FLOW)
    if current is None:
        return None, redirect(url_for("attach.start"), code=303)
    try:
        flow = services().cabinet.flow(person, current)
    except LinkingFailed as exc:
        if exc.reason in ("FLOW_NOT_FOUND", "FLOW_EXPIRED"):
            forget_flow(FLOW)
            return None, _step1(message=linking_message(exc))
        return None, _page("unavailable", 1, 503, message=linking_message(exc))
    if flow.state == dom.EXPIRED:
        forget_flow(FLOW)
        return None, _step1(message=str(LINKING_ERRORS["FLOW_EXPIRED"]))
    return flow, None


def _signed_in(view):
    """Pass the signed-in :class:`Person` to ``view``; anyone else goes to the sign-in page."""

    @wraps(view)
    def wrapper(*args, **kwargs):
        person = _person()
        if person is None:
            return redirect(url_for("auth.login"), code=303)
        return view(person, *args, **kwargs)

    return wrapper


@bp.get("")
@_signed_in
def start(person: Person):
    """Step 1. ``?new=1`` (the main page's button) forgets an earlier flow and its data."""
    if request.args.get("new"):
        forget_flow(FLOW)
        session.pop(LOOKUP, None)
        session.pop(TYPED, None)
        session.pop(PROOF, None)
    return _step1()


@bp.post("")
@_signed_in
def submit(person: Person):
    form = {name: request.form.get(name, "") for name in STEP_FIELDS}
    session[TYPED] = form
    try:
        lookup = parse_lookup(**form)
        flow = services().cabinet.start(person, lookup)
    except ValidationError as exc:
        field = exc.field if exc.field in FIELD_ERRORS else "lookup"
        return _step1(400, form, {field: str(FIELD_ERRORS[field])})
    except LinkingFailed as exc:
        return _step1(_status(exc), form, message=linking_message(exc))
    remember_flow(FLOW, flow.flow_id)
    session[LOOKUP] = lookup.as_dict()
    return _goto(flow)


# The flow moved on (another tab) or ended: the step's GET shows where it is now.
RELOAD = ("FLOW_STATE", "FLOW_EXPIRED", "FLOW_NOT_FOUND")


def _status(exc: LinkingFailed) -> int:
    if exc.reason == "TOO_MANY_ATTEMPTS":
        return 429
    if exc.reason in LINKING_ERRORS:
        return 409 if exc.reason == "CONCURRENT_CHANGE" else 400
    return 503


@bp.route("/service", methods=["GET", "POST"])
@_signed_in
def service(person: Person):
    """Step 2 «Выберите услугу»."""
    flow, response = _current(person)
    if response is not None:
        return response
    if flow.state != dom.CHOOSE_SERVICE:
        return _goto(flow)
    chosen = request.form.get("service_type", dom.HOME_INTERNET)
    if request.method == "POST":
        try:
            flow = services().cabinet.choose(person, flow.flow_id, chosen)
        except ValidationError:
            return _page("step2", 2, 400, chosen=chosen, error=str(FIELD_ERRORS["service_type"]))
        except LinkingFailed as exc:
            if exc.reason in RELOAD:
                return redirect(url_for("attach.service"), code=303)
            return _page("step2", 2, _status(exc), chosen=chosen, error=linking_message(exc))
        return _goto(flow)
    return _page("step2", 2, chosen=chosen)


@bp.route("/proof", methods=["GET", "POST"])
@_signed_in
def proof(person: Person):
    """Step 3 «Укажите логин и пароль доступа» (or the Home Phone's number and PIN)."""
    typed = {
        "login": request.form.get("login", ""),
        "proof_phone": request.form.get("proof_phone", ""),
    }
    if request.method == "POST":
        # Kept before anything can fail: the service down now loses nothing typed.
        session[PROOF] = typed
    flow, response = _current(person)
    if response is not None:
        return response
    lookup = _lookup()
    refused = flow.state == dom.REFUSED and flow.refusal_reason == dom.PROOF_FAILED
    if flow.state != dom.PROVE and not refused:
        return _goto(flow)
    if request.method == "GET":
        typed = session.get(PROOF, {}) or typed
        if not typed.get("login") and lookup and lookup.kind == "service_login":
            typed["login"] = lookup.value
        return _page("step3", 3, flow=flow, form=typed, errors={}, refused=refused)
    try:
        flow = services().cabinet.prove(
            person,
            flow,
            lookup,
            login=typed["login"],
            password=request.form.get("password", ""),
            phone_number=typed["proof_phone"],
            pin=request.form.get("pin", ""),
        )
    except ValidationError as exc:
        field = exc.field if exc.field in FIELD_ERRORS else "login"
        errors = {field: str(FIELD_ERRORS[field])}
        return _page("step3", 3, 400, flow=flow, form=typed, errors=errors, refused=False)
    except LinkingFailed as exc:
        if exc.reason in RELOAD:
            return redirect(url_for("attach.proof"), code=303)
        message = linking_message(exc)
        return _page("step3", 3, _status(exc), flow=flow, form=typed, errors={}, message=message)
    remember_flow(FLOW, flow.flow_id)
    if flow.state == dom.REFUSED and flow.refusal_reason == dom.PROOF_FAILED:
        return _page("step3", 3, 400, flow=flow, form=typed, errors={}, refused=True)
    session.pop(PROOF, None)
    return _goto(flow)


@bp.get("/result")
@_signed_in
def result(person: Person):
    """Step 4 «Результат»: attached, re-attached from another account, or refused."""
    flow, response = _current(person)
    if response is not None:
        return response
    if not flow.finished:
        return _goto(flow)
    return _page("result", 4, flow=flow)


@bp.post("/back")
@_signed_in
def back(person: Person):
    """«Назад»: step 3 → step 2 (a new flow from the same step-1 data: the service's flow
    goes only forward), step 2 or a service-login step 3 → step 1 with its data."""
    lookup = _lookup()
    if request.form.get("to") == "service" and lookup and lookup.kind != "service_login":
        try:
            flow = services().cabinet.start(person, lookup)
        except LinkingFailed as exc:
            return _page("unavailable", 3, _status(exc), message=linking_message(exc))
        remember_flow(FLOW, flow.flow_id)
        return _goto(flow)
    return redirect(url_for("attach.start"), code=303)

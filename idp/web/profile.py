"""«Персональная информация»: contacts, password, sessions."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext

from idp.domain.errors import AuthenticationFailed, Conflict, ValidationError
from idp.ports import DeliveryFailed
from idp.services.delivery import SmsRefused, mask_contact
from idp.services.profile import REAUTH_WINDOW, FreshSignInNeeded
from idp.services.registration import IllegalTransition
from idp.services.verification import SecretRejected
from idp.web import client_address, services
from idp.web.cookies import current_session
from idp.web.forms import flow_id, forget_flow, password_error, remember_flow, secret_error
from idp.web.social import provider_name

bp = Blueprint("profile", __name__, url_prefix="/account/profile")

WRONG_PASSWORD = lazy_gettext("Неверный текущий пароль.")
STALE_SIGN_IN = lazy_gettext(
    "Пароль не задан, поэтому подтвердите, что это вы: войдите ещё раз через соцсеть "
    "(кнопка ниже) и повторите изменение в течение %(minutes)s минут."
)

# The person's own security events (idp.domain.audit.EVENT_TYPES), in plain words. Events
# not listed here (the support desk's look-ups) are not shown.
EVENT_LABELS = {
    "signin.success": lazy_gettext("Вход в кабинет"),
    "signin.failure": lazy_gettext("Неудачная попытка входа"),
    "signin.locked": lazy_gettext("Вход временно заблокирован после неудачных попыток"),
    "signin.blocked": lazy_gettext("Попытка входа в заблокированную учётную запись"),
    "account.registered": lazy_gettext("Регистрация учётной записи"),
    "contact.changed": lazy_gettext("Изменены контактные данные"),
    "password.changed": lazy_gettext("Изменён пароль"),
    "password.set": lazy_gettext("Задан пароль"),
    "password.recovered": lazy_gettext("Пароль восстановлен"),
    "session.ended": lazy_gettext("Завершён сеанс"),
    "social.link": lazy_gettext("Привязана социальная сеть"),
    "social.unlink": lazy_gettext("Отвязана социальная сеть"),
    "billing.attach": lazy_gettext("Привязан лицевой счёт"),
    "billing.detach": lazy_gettext("Отвязан лицевой счёт"),
    "billing.reattach": lazy_gettext("Лицевой счёт перепривязан к вашей учётной записи"),
    "billing.taken": lazy_gettext("Лицевой счёт привязан к другой учётной записи"),
    "support.unlocked": lazy_gettext("Поддержка сняла блокировку входа"),
    "support.sessions_ended": lazy_gettext("Поддержка завершила все сеансы"),
    "support.blocked": lazy_gettext("Поддержка заблокировала учётную запись"),
    "support.unblocked": lazy_gettext("Поддержка разблокировала учётную запись"),
}


def _signed_in():
    sso = current_session()
    if sso is None:
        return None, None
    return sso, services().users.get(sso.user_id)


def _stale() -> str:
    return str(STALE_SIGN_IN) % {"minutes": REAUTH_WINDOW // 60}


def _page(user, sso, status=200, **messages):
    social = services().social
    return render_template(
        "profile/show.html",
        user=user,
        sessions=services().sessions.list_for(user.id),
        events=[
            (event, str(EVENT_LABELS[event.event_type]))
            for event in services().audit.recent(user.id)
            if event.event_type in EVENT_LABELS
        ],
        current_sid=sso.id,
        changed=request.args.get("changed"),
        social_linked=social.linked(user.id),
        social_name=provider_name,
        social_message=request.args.get("social_error") or request.args.get("unlinked"),
        social_just_linked=request.args.get("linked"),
        reauthenticated=request.args.get("reauthenticated"),
        has_password=bool(user.password_hash),
        fresh=services().profile.is_fresh(sso.auth_time),
        reauth_minutes=REAUTH_WINDOW // 60,
        **messages,
    ), status


@bp.get("")
def show():
    sso, user = _signed_in()
    if user is None:
        return redirect(url_for("auth.login"), code=303)
    return _page(user, sso, saved=request.args.get("saved"))


@bp.post("/password")
def change_password():
    sso, user = _signed_in()
    if user is None:
        return redirect(url_for("auth.login"), code=303)
    first = not user.password_hash
    try:
        services().profile.change_password(
            user,
            request.form.get("current_password", ""),
            request.form.get("new_password", ""),
            client_address(),
            sso.id,
            sso.auth_time,
        )
    except FreshSignInNeeded:
        return _page(user, sso, 400, password_error=_stale())
    except AuthenticationFailed:
        return _page(user, sso, 400, password_error=str(WRONG_PASSWORD))
    except ValidationError as exc:
        return _page(user, sso, 400, password_error=password_error(exc))
    saved = "password_set" if first else "password"
    return redirect(url_for("profile.show", saved=saved), code=303)


@bp.post("/contact")
def change_contact():
    sso, user = _signed_in()
    if user is None:
        return redirect(url_for("auth.login"), code=303)
    try:
        flow = services().profile.start_contact_change(
            user,
            request.form.get("contact", ""),
            request.form.get("current_password", ""),
            client_address(),
            sso.auth_time,
        )
    except FreshSignInNeeded:
        return _page(user, sso, 400, contact_error=_stale())
    except AuthenticationFailed:
        return _page(user, sso, 400, contact_error=str(WRONG_PASSWORD))
    except ValidationError:
        return _page(
            user,
            sso,
            400,
            contact_error=gettext("Укажите новый номер мобильного телефона или e-mail."),
        )
    except (SmsRefused, DeliveryFailed):
        return _page(user, sso, 503, contact_error=gettext("Не удалось отправить сообщение."))
    remember_flow("contact", flow.id)
    if flow.contact_kind == "phone":
        return redirect(url_for("profile.confirm_contact"), code=303)
    return _page(user, sso, link_sent=mask_contact(flow.contact_value))


@bp.route("/contact/confirm", methods=["GET", "POST"])
def confirm_contact():
    sso, user = _signed_in()
    if user is None:
        return redirect(url_for("auth.login"), code=303)
    flow = services().profile.get_change(user, flow_id("contact"))
    error, status = None, 200
    if request.method == "POST":
        try:
            services().profile.confirm_contact_code(
                user, flow.id, request.form.get("code", ""), client_address()
            )
        except SecretRejected as exc:
            error, status = secret_error(exc), 400
        except (IllegalTransition, Conflict):
            error, status = gettext("Не удалось изменить контактные данные."), 409
        else:
            forget_flow("contact")
            return redirect(url_for("profile.show", changed="1"), code=303)
    return render_template(
        "register/confirm.html",
        masked=mask_contact(flow.contact_value),
        error=error,
        wait=services().verifier.cooldown(flow),
        action=url_for("profile.confirm_contact"),
        resend=url_for("profile.show"),
        change_url=url_for("profile.show"),
    ), status


@bp.post("/sessions/end-others")
def end_others():
    sso, user = _signed_in()
    if user is None:
        return redirect(url_for("auth.login"), code=303)
    services().profile.end_other_sessions(user, sso.id)
    return redirect(url_for("profile.show", saved="sessions"), code=303)

"""Helpers shared by the self-service pages: captcha, messages, the flow id in the session."""

from __future__ import annotations

import base64
import secrets
import struct

from flask import redirect, render_template, request, session, url_for
from flask_babel import gettext, lazy_gettext

from idp.domain.errors import Throttled
from idp.ports import DeliveryFailed
from idp.services.captcha import CaptchaThrottled
from idp.services.delivery import SmsRefused, mask_contact
from idp.services.passwords import MAX_PASSWORD_LENGTH
from idp.services.registration import IllegalTransition
from idp.services.users import MIN_PASSWORD_LENGTH
from idp.services.verification import SecretRejected
from idp.web import client_address, services

ERRORS = {
    "family_name": lazy_gettext("Укажите фамилию (буквы, дефис, апостроф, пробел)."),
    "given_name": lazy_gettext("Укажите имя (буквы, дефис, апостроф, пробел)."),
    "middle_name": lazy_gettext("Отчество может содержать только буквы, дефис, апостроф и пробел."),
    "region": lazy_gettext("Выберите регион из списка."),
    "contact": lazy_gettext("Укажите номер мобильного телефона или e-mail."),
    "accept": lazy_gettext("Примите Пользовательское соглашение и Политику конфиденциальности."),
    "captcha": lazy_gettext("Неверный код с картинки. Попробуйте ещё раз."),
    "login": lazy_gettext("Укажите номер телефона или e-mail."),
}

# ``wrong`` takes ``%(left)s``, the tries left.
SECRET_ERRORS = {
    "wrong": lazy_gettext("Неверный код. Осталось попыток: %(left)s."),
    "expired": lazy_gettext("Срок действия кода истёк. Запросите новый код."),
    "exhausted": lazy_gettext("Слишком много неверных попыток. Запросите новый код."),
    "used": lazy_gettext("Этот код или ссылка уже использованы."),
}

# The reasons of :class:`idp.services.password_policy.WeakPassword`, in the page's language.
PASSWORD_ERRORS = {
    "too_short": lazy_gettext(
        "Пароль должен содержать не менее %(count)s символов", count=MIN_PASSWORD_LENGTH
    ),
    "too_long": lazy_gettext(
        "Пароль должен содержать не более %(count)s символов", count=MAX_PASSWORD_LENGTH
    ),
    "common": lazy_gettext("Пароль слишком распространён"),
    "personal": lazy_gettext("Пароль не должен содержать ваше имя, телефон или e-mail"),
    "service_name": lazy_gettext(
        "Пароль не должен содержать название сервиса: «Ростелеком» или «ЕЛК»"
    ),
    "repetitive": lazy_gettext(
        "Пароль не должен состоять из повторов или простых последовательностей символов, "
        "например «aaaaaaaa», «12345678» или «qwertyui»"
    ),
}


def secret_error(exc) -> str:
    reason = exc.reason if exc.reason in SECRET_ERRORS else "wrong"
    message = str(SECRET_ERRORS[reason])
    return message % {"left": exc.tries_left} if reason == "wrong" else message


def password_error(exc) -> str:
    """Why a chosen password was refused: the policy's reason, said in the page's language."""
    reason = getattr(exc, "reason", None)
    if reason in PASSWORD_ERRORS:
        return str(PASSWORD_ERRORS[reason])
    fallback = getattr(exc, "message_ru", None)
    return fallback or gettext("Этот пароль не подходит. Придумайте другой.")


def new_captcha(flow: str | None = None) -> dict:
    """A fresh picture for a page: ``{"id", "src", "width", "height"}``, or
    ``{"throttled": seconds}`` when this ``flow`` (by default the browser session's) or this
    address had its share of new pictures; the page then says when to try again."""
    if flow is None:
        flow = session.setdefault("captcha_flow", secrets.token_urlsafe(12))
    try:
        challenge, png = services().captcha.new(client_address(), flow)
    except CaptchaThrottled as exc:
        return {"throttled": exc.retry_after}
    # The PNG header (IHDR) holds the size: the page reserves the picture's place.
    width, height = struct.unpack(">II", png[16:24])
    return {
        "id": challenge,
        "src": "data:image/png;base64," + base64.b64encode(png).decode(),
        "width": width,
        "height": height,
    }


def captcha_status(captcha: dict | None) -> tuple[int, dict]:
    """``(status, headers)`` for a page that shows ``captcha``: 429 with Retry-After when no
    picture could be drawn, else ``(0, {})`` (the page's own status stands)."""
    if captcha and "throttled" in captcha:
        return 429, {"Retry-After": str(captcha["throttled"])}
    return 0, {}


def captcha_shown(form) -> bool:
    """Whether the submitted form carried a picture: a form that had none gets one, with
    its prompt and no error."""
    return bool(form.get("captcha_id"))


def captcha_needed(contact_key: str | None, phone: str | None = None) -> bool:
    policy = services().captcha_policy
    if phone and policy.always_for_sms(phone):
        return True
    return policy.required(client_address(), contact_key)


def captcha_ok(form) -> bool:
    return services().captcha.check(form.get("captcha_id", ""), form.get("captcha", ""))


def remember_flow(name: str, flow_id: str) -> None:
    session[f"flow:{name}"] = flow_id


def flow_id(name: str) -> str | None:
    return session.get(f"flow:{name}")


def forget_flow(name: str) -> None:
    session.pop(f"flow:{name}", None)


# --- «Подтвердите операцию»: the SMS-code step every flow shares ---------------------------


def code_page(
    flow,
    prefix: str,
    error=None,
    status: int = 200,
    wait: int | None = None,
    headers: dict | None = None,
    change_url: str | None = None,
):
    """The code page of flow ``prefix`` (a blueprint with ``confirm`` and ``resend``)."""
    return (
        render_template(
            f"{prefix}/confirm.html",
            masked=mask_contact(flow.contact_value),
            error=error,
            wait=services().verifier.cooldown(flow) if wait is None else wait,
            action=url_for(f"{prefix}.confirm"),
            resend=url_for(f"{prefix}.resend"),
            change_url=change_url,
        ),
        status,
        headers or {},
    )


def confirm_code_step(
    service, flow, prefix: str, next_endpoint: str, change_url: str | None = None
):
    """GET shows the code page; POST checks the code and moves on, or shows why not."""
    if request.method == "POST":
        try:
            service.confirm_code(flow.id, request.form.get("code", ""))
        except SecretRejected as exc:
            return code_page(flow, prefix, secret_error(exc), 400, change_url=change_url)
        except IllegalTransition:
            # The flow is past this step (a second submit, another tab) or elsewhere: say so
            # rather than pretend this code confirmed anything.
            message = str(SECRET_ERRORS["used"])
            return code_page(flow, prefix, message, 409, change_url=change_url)
        return redirect(url_for(next_endpoint), code=303)
    return code_page(flow, prefix, change_url=change_url)


def resend_step(service, flow, prefix: str, change_url: str | None = None):
    """«Отправить SMS-код повторно»: 429 with Retry-After while the cooldown runs."""
    try:
        service.resend(flow.id, client_address())
    except Throttled as exc:
        message = gettext(
            "Повторная отправка будет доступна через %(seconds)s с.", seconds=exc.retry_after
        )
        return code_page(
            flow,
            prefix,
            message,
            429,
            wait=exc.retry_after,
            headers={"Retry-After": str(exc.retry_after)},
            change_url=change_url,
        )
    except (SmsRefused, DeliveryFailed):
        message = gettext("Не удалось отправить сообщение. Попробуйте позже.")
        return code_page(flow, prefix, message, 503, wait=0, change_url=change_url)
    return redirect(url_for(f"{prefix}.confirm"), code=303)

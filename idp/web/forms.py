"""Helpers shared by the self-service pages: captcha, messages, the flow id in the session."""

from __future__ import annotations

import base64

from flask import session

from idp.web import client_address, services

ERRORS = {
    "family_name": "Укажите фамилию (буквы, дефис, апостроф, пробел).",
    "given_name": "Укажите имя (буквы, дефис, апостроф, пробел).",
    "middle_name": "Отчество может содержать только буквы, дефис, апостроф и пробел.",
    "region": "Выберите регион из списка.",
    "contact": "Укажите номер мобильного телефона или e-mail.",
    "accept": "Примите Пользовательское соглашение и Политику конфиденциальности.",
    "captcha": "Неверный код с картинки. Попробуйте ещё раз.",
    "login": "Укажите номер телефона или e-mail.",
}

SECRET_ERRORS = {
    "wrong": "Неверный код. Осталось попыток: {left}.",
    "expired": "Срок действия кода истёк. Запросите новый код.",
    "exhausted": "Слишком много неверных попыток. Запросите новый код.",
    "used": "Этот код или ссылка уже использованы.",
}


def secret_error(exc) -> str:
    return SECRET_ERRORS.get(exc.reason, SECRET_ERRORS["wrong"]).format(left=exc.tries_left)


def new_captcha() -> dict:
    challenge, png = services().captcha.new()
    return {"id": challenge, "src": "data:image/png;base64," + base64.b64encode(png).decode()}


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

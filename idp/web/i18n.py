"""The language of the pages: Russian first (the source language of every message), English
second, through Flask-Babel.

A request's language is the first of:

1. an explicit ``?lang=ru|en`` (the footer's switch); remembered in the ``elk_lang`` cookie and,
   during a sign-in, in the interaction, so it also outranks the client's ``ui_locales`` on
   the following pages of that sign-in;
2. the ``ui_locales`` parameter of the authorization request being served (OIDC Core
   §3.1.2.1: space-separated BCP 47 tags in order of preference; the first we support wins);
3. the ``elk_lang`` cookie;
4. the best match of the Accept-Language header (RFC 9110 §12.5.4);
5. ``settings().default_locale``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from urllib.parse import urlencode

from flask import Flask, current_app, g, has_request_context, request, url_for
from flask_babel import Babel, get_locale
from werkzeug.exceptions import HTTPException

from idp.ports import StoreUnavailable
from idp.web import settings

SUPPORTED = ("ru", "en")
SWITCH_LABELS = {"ru": "Русский", "en": "English"}
COOKIE = "elk_lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"

# Pages that only answer a POST: the switch leads to the page that shows the same form.
_GET_PAGE_FOR = {
    "register.resend": "register.confirm",
    "recover.resend": "recover.confirm",
    "profile.change_password": "profile.show",
    "profile.change_contact": "profile.show",
    "profile.end_others": "profile.show",
}
# Endpoints that serve a step of a sign-in, and where they carry the interaction id.
_INTERACTION_IN_VIEW_ARGS = ("auth.consent", "oauth.resume")
# Sign-in page, and the self-service pages a portal's sign-in leads to (the interaction in a
# query or form parameter): they speak the sign-in's language.
_INTERACTION_IN_PARAMS = (
    "auth.login",
    "register.start",
    "register.submit",
    "recover.start",
    "recover.submit",
)


def _supported(tag: str | None) -> str | None:
    """``tag``'s language if we have it: ``en-GB`` and ``EN`` are ``en``."""
    if not tag:
        return None
    primary = tag.strip().split("-", 1)[0].lower()
    return primary if primary in SUPPORTED else None


def _param(name: str) -> str | None:
    """A query or form parameter; a body the request may not read (too large, malformed)
    has none: the error page for it needs a language too."""
    try:
        return request.values.get(name)
    except HTTPException:
        return request.args.get(name)


def explicit_choice() -> str | None:
    return _supported(request.args.get("lang"))


def _interaction_uid() -> str | None:
    if request.endpoint in _INTERACTION_IN_VIEW_ARGS:
        return (request.view_args or {}).get("uid")
    if request.endpoint in _INTERACTION_IN_PARAMS:
        return _param("interaction")
    return None


def _interaction() -> tuple[str | None, dict | None]:
    """The sign-in this request serves, read from the store once per request."""
    if "elk_interaction" not in g:
        from idp.web.oauth import load_interaction

        uid = _interaction_uid()
        g.elk_interaction = (uid, None)
        if uid:
            # The language is no reason to fail a page: its own code reports a store outage.
            with contextlib.suppress(StoreUnavailable):
                g.elk_interaction = (uid, load_interaction(uid))
    return g.elk_interaction


def _ui_locales() -> str | None:
    if request.endpoint == "oauth.authorize":
        value = _param("ui_locales")
    else:
        _, interaction = _interaction()
        if interaction is None:
            return None
        if _supported(interaction.get("lang")):
            return interaction["lang"]
        value = interaction.get("params", {}).get("ui_locales")
    for tag in (value or "").split()[:10]:
        if found := _supported(tag):
            return found
    return None


def select_locale() -> str:
    if not has_request_context():
        return settings().default_locale
    return (
        explicit_choice()
        or _ui_locales()
        or _supported(request.cookies.get(COOKIE))
        or request.accept_languages.best_match(SUPPORTED)
        or settings().default_locale
    )


def remember_choice(response):
    """Keep an explicit ``?lang=`` in a cookie (and in the sign-in it was made during)."""
    if not request.query_string:
        return response  # no query, no choice: the API's requests end here, unparsed
    lang = explicit_choice()
    if lang is None:
        return response
    response.set_cookie(
        COOKIE,
        lang,
        max_age=COOKIE_MAX_AGE,
        path="/",
        secure=settings().secure_cookies,
        httponly=True,
        samesite="Lax",
    )
    uid = _interaction_uid()
    if uid:
        # Read anew: the view may have changed or ended the interaction since.
        from idp.web.oauth import load_interaction, save_interaction

        with contextlib.suppress(StoreUnavailable):
            interaction = load_interaction(uid)
            if interaction is not None and interaction.get("lang") != lang:
                interaction["lang"] = lang
                save_interaction(interaction, uid)
    return response


def _switch_target(lang: str) -> str:
    """The current page in ``lang``: same path and query (an interaction id stays)."""
    if request.method == "GET":
        path = request.path
        args = [(k, v) for k, v in request.args.items(multi=True) if k != "lang"]
    else:
        endpoint = _GET_PAGE_FOR.get(request.endpoint or "")
        path = url_for(endpoint) if endpoint else request.path
        args = []
        uid = _param("interaction") if request.endpoint in _INTERACTION_IN_PARAMS else None
        if uid:
            args.append(("interaction", uid))
        if endpoint is None and not _answers_get(path):
            path = url_for("auth.index")
    return f"{path}?{urlencode([*args, ('lang', lang)])}"


def _answers_get(path: str) -> bool:
    adapter = current_app.url_map.bind_to_environ(request.environ)
    try:
        adapter.match(path, method="GET")
    except HTTPException:
        return False
    return True


def page_language() -> dict:
    """Template globals: ``page_lang`` for ``<html lang>``, ``lang_switch`` for the footer."""
    if not has_request_context():
        return {}
    lang = str(get_locale() or settings().default_locale)
    others = [code for code in SUPPORTED if code != lang]
    return {
        "page_lang": lang,
        "lang_switch": [(code, SWITCH_LABELS[code], _switch_target(code)) for code in others],
    }


def init_app(app: Flask) -> None:
    Babel(
        app,
        default_locale=app.extensions["idp.settings"].default_locale,
        default_translation_directories=str(TRANSLATIONS),
        locale_selector=select_locale,
    )
    app.after_request(remember_choice)
    app.context_processor(page_language)

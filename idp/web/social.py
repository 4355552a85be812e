"""Social sign-in pages: the buttons' round trip, the callback, the proof of an existing
account, and linking / unlinking in «Персональная информация» (:mod:`idp.services.social`)."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, request, session, url_for
from flask_babel import gettext, lazy_gettext

from idp.domain.errors import AuthenticationFailed, NotFound, Throttled
from idp.domain.social import PROVIDER_NAMES, SocialError
from idp.ports import DeliveryFailed
from idp.services.carried_authorization import CarriedAuthorization
from idp.services.crypto import new_token
from idp.services.delivery import SmsRefused, mask_contact
from idp.services.social import (
    SOCIAL_ACR,
    AlreadyLinked,
    LastSignInMethod,
    Linked,
    NotThisAccount,
    ProofNeeded,
    SignUp,
    amr_for,
)
from idp.services.social_proof import IllegalProofTransition, NoProofChannel, SignedIn
from idp.services.verification import SecretRejected
from idp.web import client_address, services, settings
from idp.web.carry import after_sign_in, carried_from_request, client_name
from idp.web.cookies import cookie_name, current_session, set_session_cookie
from idp.web.forms import flow_id, forget_flow, remember_flow, secret_error
from idp.web.oauth import save_interaction

bp = Blueprint("social", __name__)

BINDING = "social_binding"
PENDING = "social_pending"

# One sentence per SocialError kind; ``%(provider)s`` is the provider's display name.
ERRORS = {
    "denied": lazy_gettext("Вы отменили вход через %(provider)s."),
    "invalid_grant": lazy_gettext("%(provider)s не подтвердил вход. Попробуйте ещё раз."),
    "unavailable": lazy_gettext(
        "%(provider)s сейчас не отвечает. Попробуйте позже или войдите по логину и паролю."
    ),
    "bad_response": lazy_gettext(
        "%(provider)s прислал неожиданный ответ. Попробуйте позже или войдите по логину и паролю."
    ),
    "state": lazy_gettext(
        "Вход через соцсеть не удался: ссылка устарела или открыта в другом браузере. "
        "Начните вход заново."
    ),
    "nonce": lazy_gettext("Не удалось проверить ответ %(provider)s. Начните вход заново."),
    "config": lazy_gettext("Вход через %(provider)s сейчас недоступен."),
}
STATUS = {"denied": 200, "unavailable": 503, "bad_response": 502, "config": 404}

WRONG_PASSWORD = lazy_gettext("Неверный пароль.")


# Provider names that differ by language (the services know the Russian ones).
LOCAL_NAMES = {"yandex": lazy_gettext("Яндекс ID")}


def provider_name(provider: str) -> str:
    """The provider's name for a sentence of this page, in the page's language."""
    local = LOCAL_NAMES.get(provider)
    return str(local) if local else services().social.display_name(provider)


@bp.app_context_processor
def social_buttons():
    """The sign-in page's buttons: the enabled providers, in the help pages' order."""
    return {
        "social_buttons": lambda: [
            (name, label, provider_name(name)) for name, label, _ in services().social.buttons()
        ]
    }


def _redirect_uri(provider: str) -> str:
    # From the configured issuer, never from the request's Host (checklist 38).
    return f"{settings().issuer}/login/social/{provider}/callback"


def _binding() -> str:
    """A random key in this browser's session: the round trip is bound to it."""
    if not session.get(BINDING):
        session[BINDING] = new_token(32)
    return session[BINDING]


def _login_error(kind: str, provider: str, carried: CarriedAuthorization | None):
    """The sign-in page with the error; the portal's request (carried by the round trip,
    its interaction maybe gone) goes on with the page as a new interaction."""
    name = provider_name(provider)
    message = str(ERRORS.get(kind, ERRORS["bad_response"])) % {"provider": name}
    return render_template(
        "login.html",
        interaction=save_interaction(carried.as_interaction()) if carried else None,
        client_name=client_name(carried.client_id) if carried else None,
        login="",
        error=message,
    ), STATUS.get(kind, 400)


def _sign_in(outcome: SignedIn, here: bool = True):
    """Signed in: back to the portal whose request the sign-in carried (``here``: from the
    browser that started it, see :func:`idp.web.carry.after_sign_in`), else the main page."""
    opened = services().sessions.open(
        outcome.user,
        amr=amr_for(outcome.provider),
        acr=SOCIAL_ACR,
        remember=False,
        ip=client_address(),
        user_agent=request.headers.get("User-Agent"),
        previous_cookie=request.cookies.get(cookie_name()),
    )
    session.clear()  # a new CSRF secret with the new identity
    if outcome.reauthenticated:
        response = redirect(url_for("profile.show", reauthenticated="1"), code=303)
    else:
        response = after_sign_in(outcome.authorization, here)
    set_session_cookie(response, opened)
    return response


@bp.get("/login/social/<provider>")
def begin(provider: str):
    """A button of the sign-in page; ``interaction`` is the pending authorization request."""
    carried = carried_from_request()
    if provider not in PROVIDER_NAMES:
        return _login_error("config", provider, carried)
    try:
        url = services().social.begin(
            provider,
            binding=_binding(),
            redirect_uri=_redirect_uri(provider),
            authorization=carried,
        )
    except SocialError as exc:
        return _login_error(exc.kind, provider, carried)
    return redirect(url, code=303)


@bp.get("/login/social/<provider>/callback")
def callback(provider: str):
    social = services().social
    carried = social.peek_authorization(request.args, session.get(BINDING) or "")
    if provider not in PROVIDER_NAMES:
        return _login_error("state", provider, None)
    sso = current_session()
    try:
        outcome = social.finish(
            provider,
            request.args,
            binding=session.get(BINDING) or "",
            redirect_uri=_redirect_uri(provider),
            current_user=sso.user_id if sso else None,
        )
    except SocialError as exc:
        return _login_error(exc.kind, provider, carried)
    except AlreadyLinked:
        return redirect(url_for("profile.show", social_error="taken"), code=303)
    except NotThisAccount:
        return redirect(url_for("profile.show", social_error="other"), code=303)
    if isinstance(outcome, SignedIn):
        return _sign_in(outcome)
    if isinstance(outcome, Linked):
        return redirect(url_for("profile.show", linked=outcome.provider), code=303)
    if isinstance(outcome, ProofNeeded):
        remember_flow("social", outcome.flow.id)
        return redirect(url_for("social.proof"), code=303)
    assert isinstance(outcome, SignUp)
    session[PENDING] = outcome.pending
    return redirect(url_for("register.start"), code=303)


# --- the provider's contact belongs to an account: prove it, then link ------------------------


def _proof_page(row, error=None, status=200, sent=None):
    proofs = services().social_proof
    phone, email = proofs.phone(row), proofs.email(row)
    return render_template(
        "social/proof.html",
        provider=provider_name(row.payload["social"]["provider"]),
        masked=mask_contact(row.contact_value),
        has_password=proofs.has_password(row),
        phone=mask_contact(phone) if phone else None,
        email=mask_contact(email) if email else None,
        code_sent=row.state == "code_sent",
        sent=sent,
        error=error,
    ), status


@bp.route("/login/social/proof", methods=["GET", "POST"])
def proof():
    proofs = services().social_proof
    try:
        row = proofs.get(flow_id("social"))
    except NotFound:
        return _login_error("state", "", None)
    if request.method == "GET":
        return _proof_page(row)
    action = request.form.get("action")
    try:
        if action == "password":
            outcome = proofs.prove_with_password(
                row.id, request.form.get("password", ""), client_address()
            )
        elif action == "code":
            outcome = proofs.prove_with_code(row.id, request.form.get("code", ""))
        elif action == "send_code":
            row = proofs.send_code(row.id, client_address())
            return _proof_page(row, sent="phone")
        elif action == "send_link":
            row = proofs.send_link(row.id)
            return _proof_page(row, sent="email")
        else:
            return _proof_page(row, status=400)
    except AuthenticationFailed:
        return _proof_page(row, str(WRONG_PASSWORD), 400)
    except SecretRejected as exc:
        return _proof_page(row, secret_error(exc), 400)
    except Throttled as exc:
        message = gettext(
            "Повторная отправка будет доступна через %(seconds)s с.", seconds=exc.retry_after
        )
        return _proof_page(row, message, 429)
    except (SmsRefused, DeliveryFailed, NoProofChannel):
        return _proof_page(row, gettext("Не удалось отправить сообщение. Попробуйте позже."), 503)
    except (IllegalProofTransition, AlreadyLinked):
        return _proof_page(row, gettext("Эту соцсеть уже нельзя привязать."), 409)
    forget_flow("social")
    return _sign_in(outcome)


@bp.route("/login/social/proof/<token>", methods=["GET", "POST"])
def proof_link(token: str):
    """The e-mail's link: a GET only shows a button (mail scanners change nothing)."""
    proofs = services().social_proof
    row = proofs.by_link(token)
    valid = row is not None
    if request.method == "GET" or not valid:
        status = 200 if request.method == "GET" or valid else 400
        return render_template("social/link.html", token=token, valid=valid), status
    try:
        outcome = proofs.prove_with_link(token)
    except (SecretRejected, IllegalProofTransition, AlreadyLinked, NotFound):
        return render_template("social/link.html", token=token, valid=False), 400
    here = flow_id("social") == row.id  # the browser the proof started in
    forget_flow("social")
    return _sign_in(outcome, here)


# --- «Персональная информация»: link another, unlink ----------------------------------------


def _round_trip_for_signed_in(**purpose):
    """A round trip started by a signed-in person from «Персональная информация» (POST with
    CSRF: nobody else can start it); ``purpose``: ``link_user`` or ``reauth_user``."""
    sso = current_session()
    if sso is None:
        return redirect(url_for("auth.login"), code=303)
    provider = request.form.get("provider", "")
    try:
        url = services().social.begin(
            provider,
            binding=_binding(),
            redirect_uri=_redirect_uri(provider),
            **{name: sso.user_id for name in purpose},
        )
    except SocialError:
        return redirect(url_for("profile.show", social_error="unavailable"), code=303)
    return redirect(url, code=303)


@bp.post("/account/profile/social/link")
def link():
    """«Привязать»: link another network to the signed-in account."""
    return _round_trip_for_signed_in(link_user=True)


@bp.post("/account/profile/social/reauth")
def reauth():
    """«Войти ещё раз через …»: the fresh sign-in an account without a password gives instead
    of the current password (:mod:`idp.services.profile`); back to the profile page."""
    return _round_trip_for_signed_in(reauth_user=True)


@bp.post("/account/profile/social/<int:identity_id>/unlink")
def unlink(identity_id: int):
    sso = current_session()
    if sso is None:
        return redirect(url_for("auth.login"), code=303)
    user = services().users.get(sso.user_id)
    try:
        services().social.unlink(user, identity_id)
    except LastSignInMethod:
        return redirect(url_for("profile.show", social_error="last"), code=303)
    except NotFound:
        return redirect(url_for("profile.show"), code=303)
    return redirect(url_for("profile.show", unlinked="1"), code=303)

"""The edge of :mod:`idp.services.carried_authorization`: read the interaction a page was
opened with, remember which browser started a flow, and end a flow by going back to the
portal (or by saying how to), or to the IdP's own pages when no portal sent the person."""

from __future__ import annotations

from flask import redirect, request, session, url_for

from idp.services.carried_authorization import CarriedAuthorization
from idp.web import services
from idp.web.oauth import load_interaction, save_interaction


def interaction_uid() -> str | None:
    """The interaction a self-service page was opened with (query or hidden form field),
    when it is still alive: it is carried on to the next page."""
    uid = request.values.get("interaction") or None
    return uid if uid and load_interaction(uid) is not None else None


def carried_from_request() -> CarriedAuthorization | None:
    uid = interaction_uid()
    return CarriedAuthorization.from_interaction(load_interaction(uid)) if uid else None


def mark_started_here(flow_name: str, flow_id: str) -> None:
    """This browser started the flow (its portal session, with ``state``, is here too)."""
    session[f"flow-origin:{flow_name}"] = flow_id


def started_here(flow_name: str, flow_id: str) -> bool:
    return session.get(f"flow-origin:{flow_name}") == flow_id


def client_name(client_id: str | None) -> str | None:
    client = services().clients.get(client_id) if client_id else None
    return client.name if client else None


def _resume(carried: CarriedAuthorization) -> str:
    return save_interaction(carried.as_interaction())


def after_sign_in(carried: CarriedAuthorization | None, here: bool, **home_args):
    """The person is signed in now: back to the portal with its code (consent first where
    it applies), the portal's name on the main page when the flow started in another
    browser, else the main page."""
    if carried is None:
        return redirect(url_for("account.home", **home_args), code=303)
    if not here:
        return redirect(url_for("account.home", portal=carried.client_id, **home_args), code=303)
    return redirect(url_for("oauth.resume", uid=_resume(carried)), code=303)


def to_sign_in(carried: CarriedAuthorization | None, here: bool, **login_args):
    """The person signs in next (after recovery, the legacy upgrade): the sign-in page
    completes the portal's request; in another browser it says how to go back."""
    if carried is None:
        return redirect(url_for("auth.login", **login_args), code=303)
    if not here:
        return redirect(url_for("auth.login", portal=carried.client_id, **login_args), code=303)
    return redirect(url_for("auth.login", interaction=_resume(carried), **login_args), code=303)

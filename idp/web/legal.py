"""«Пользовательское соглашение» and «Политика конфиденциальности»: the documents a user accepts
with «Продолжить» on the first step of registration, in the versions registration records."""

from __future__ import annotations

from flask import Blueprint, render_template

from idp.web import settings

bp = Blueprint("legal", __name__, url_prefix="/legal")


@bp.get("/terms")
def terms():
    return render_template("legal/terms.html", version=settings().terms_version)


@bp.get("/privacy")
def privacy():
    return render_template("legal/privacy.html", version=settings().privacy_version)

"""Liveness and readiness probes for the orchestrator."""

from __future__ import annotations

from flask import Blueprint, jsonify

from idp.web import services

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """503 naming each part that is down (``database``, ``store``, ``migrations``, ``keys``)
    and what to do about it; the orchestrator sends no traffic until it answers 200."""
    report = services().health.report()
    down = list(report)
    body = {"status": "ok" if not down else "unavailable", "down": down}
    if down:
        body["detail"] = report
    response = jsonify(body)
    if down:
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return response

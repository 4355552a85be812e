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
    down = services().health.problems()
    response = jsonify({"status": "ok" if not down else "unavailable", "down": down})
    if down:
        response.status_code = 503
        response.headers["Retry-After"] = "5"
    return response

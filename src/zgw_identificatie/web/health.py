"""Liveness and readiness for the orchestrator. No personal data, no secrets."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, jsonify

from .security import services

bp = Blueprint("health", __name__, url_prefix="/health")


@bp.get("/live")
def live() -> Any:
    return jsonify({"status": "ok"})


@bp.get("/ready")
def ready() -> Any:
    svc = services()
    checks: dict[str, str] = {}
    engine = getattr(svc.store, "engine", None)
    if engine is not None:
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            checks["database"] = "ok"
        except sa.exc.SQLAlchemyError:
            checks["database"] = "unavailable"
    ok = all(v == "ok" for v in checks.values())
    return jsonify({"status": "ok" if ok else "unavailable", "checks": checks}), 200 if ok else 503

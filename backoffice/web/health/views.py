"""Liveness and readiness probes for the load balancer and the platform."""
from flask import Blueprint, current_app, jsonify

from backoffice.extensions import db
from backoffice.readiness import check_database, check_redis
from backoffice.web.auth import public

bp = Blueprint("health", __name__)


@bp.get("/healthz")
@public
def healthz():
    """Say the process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
@public
def readyz():
    """Say whether PostgreSQL and Redis are reachable and the schema is at head."""
    checks = check_database(db.session, current_app.extensions["migrate"].directory)
    checks["redis"] = check_redis(current_app.config["REDIS_URL"])
    ready = (
        checks["database"] == "ok"
        and checks["migrations"] == "at head"
        and (checks["redis"] == "ok" or not current_app.config["REDIS_URL"])
    )
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503

"""Liveness and readiness probes for the load balancer and the platform."""
from datetime import UTC, datetime

from flask import Blueprint, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from backoffice.extensions import db
from backoffice.liveness import read_beats, summary
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
    """Say whether PostgreSQL and Redis are reachable and the schema is at head; with Redis, also report how many
    workers and schedulers are alive and how many of them wait for Redis (reported, not required: a web node
    serves pages and archives webhooks without them)."""
    checks = check_database(db.session, current_app.extensions["migrate"].directory)
    checks["redis"] = check_redis(current_app.config["REDIS_URL"])
    ready = (
        checks["database"] == "ok"
        and checks["migrations"] == "at head"
        and (checks["redis"] == "ok" or not current_app.config["REDIS_URL"])
    )
    extra = {}
    if current_app.config["REDIS_URL"] and checks["database"] == "ok":
        try:
            extra["processes"] = summary(read_beats(db.session, datetime.now(UTC), current_app.config["HEARTBEAT_SECONDS"]))
        except SQLAlchemyError:
            db.session.rollback()
            extra["processes"] = "unknown"
        finally:
            db.session.close()
    return jsonify(status="ready" if ready else "not ready", checks=checks, **extra), 200 if ready else 503

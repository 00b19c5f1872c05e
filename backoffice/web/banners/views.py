"""/banners: the data-quality banner stack every page polls (every 60 s while an operator is signed in)."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, render_template
from flask_login import current_user

from backoffice.billing.reconcile import health
from backoffice.extensions import db
from backoffice.web.auth import public
from backoffice.web.htmx import stop_polling

bp = Blueprint("banners", __name__)


@bp.get("/banners")
@public
def stack():
    """The banners whose condition holds now; empty when none does (the slot keeps polling)."""
    if not current_user.is_authenticated:
        return stop_polling()
    if not current_app.config["PUBLIC_SUBSCRIPTION_ENABLED"]:
        return ""
    mrr = health.worst_mrr_consistency(db.session, current_app.config["PLATFORM_CURRENCY"])
    return render_template(
        "banners/_stack.html", drift=health.drift_count(db.session), unsynced=health.unsynced_count(db.session),
        mrr=mrr, mismatches=None if mrr.consistent else health.mrr_mismatches(db.session),
        drift_check=health.drift_check(db.session, datetime.now(UTC)))

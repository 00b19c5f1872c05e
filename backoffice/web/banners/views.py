"""/banners: the data-quality banner stack, drawn with every page and polled every 60 s while an operator is
signed in."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, render_template
from flask_login import current_user
from markupsafe import Markup

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
    return banner_stack()


@bp.app_template_global()
def banner_stack() -> Markup:
    """The stack as it stands, for the page to draw before its first paint: a stack that arrived after the page
    pushed everything below it down, under a pointer already on its way to a link."""
    if not current_app.config["PUBLIC_SUBSCRIPTION_ENABLED"]:
        return Markup("")
    mrr = health.worst_mrr_consistency(db.session, current_app.config["PLATFORM_CURRENCY"])
    counts = health.account_counts(db.session)
    return Markup(render_template(
        "banners/_stack.html", drift=counts.drift, unsynced=counts.unsynced, mrr=mrr,
        mismatches=None if mrr.consistent else health.mrr_mismatches(db.session),
        drift_check=health.drift_check(db.session, datetime.now(UTC))).strip())

"""/jobs: the drift sweep's progress, its failures, and the admin's buttons to run it or requeue failures."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, flash, redirect, url_for
from flask_babel import gettext as _

from backoffice.billing import operations
from backoffice.extensions import db
from backoffice.read.sweep_status import sweep_status
from backoffice.web.actions import acting_operator, reason_or_flash
from backoffice.web.auth import admin_required
from backoffice.web.htmx import render_page_or_partial

bp = Blueprint("jobs", __name__)


def _context() -> dict[str, object]:
    now = datetime.now(UTC)
    return {**vars(sweep_status(db.session, current_app.config, now)), "now": now}


@bp.get("/jobs")
def index():
    """The drift sweep: when it ran, how far it got, what failed."""
    return render_page_or_partial("jobs/index.html", "jobs/_sweep.html", **_context())


@bp.post("/jobs/sweep")
@admin_required
def start_sweep():
    """Run the drift sweep now (audited)."""
    reason = reason_or_flash(_("Give a reason for the sweep: it goes into the audit log."))
    if reason is not None:
        operations.start_sweep(db.session, acting_operator(), reason)
        flash(_("Drift sweep started."), "success")
    return redirect(url_for(".index"), 303)


@bp.post("/jobs/sweep/requeue")
@admin_required
def requeue_failures():
    """Check the failed subscriptions of the last sweep again (audited)."""
    reason = reason_or_flash(_("Give a reason for requeueing: it goes into the audit log."))
    requeued = operations.requeue_sweep_failures(db.session, acting_operator(), reason) if reason is not None else 0
    if requeued:
        flash(_("%(num)d failed checks requeued.", num=requeued), "success")
    return redirect(url_for(".index"), 303)

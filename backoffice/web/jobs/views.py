"""/jobs: the drift sweep's progress, its failures, and the admin's buttons to run it or requeue failures."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, current_app, flash, redirect, url_for
from flask_babel import gettext as _
from flask_login import current_user

from backoffice.billing import operations
from backoffice.billing.reconcile import sweep
from backoffice.billing.reconcile import tasks as sync_tasks
from backoffice.extensions import db
from backoffice.jobs import enqueue
from backoffice.stripe_gateway.factory import default_rate_limit
from backoffice.web.actions import reason_or_flash
from backoffice.web.auth import admin_required
from backoffice.web.htmx import render_page_or_partial

bp = Blueprint("jobs", __name__)


def _context() -> dict[str, object]:
    now = datetime.now(UTC)
    key = current_app.config.get("STRIPE_SECRET_KEY")
    rate = current_app.config.get("STRIPE_RATE_LIMIT") or (default_rate_limit(key) if key else None)
    return {"state": sweep.read_state(db.session), "due": sweep.due_count(db.session, now), "now": now,
            "rate": rate, "shared": bool(current_app.config.get("REDIS_URL")), "stripe_configured": bool(key)}


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
        operations.audit_sweep(db.session, current_user.identity.principal_id, reason)
        db.session.commit()
        enqueue(sync_tasks.sweep_job, queue="default")
        flash(_("Drift sweep started."), "success")
    return redirect(url_for(".index"), 303)


@bp.post("/jobs/sweep/requeue")
@admin_required
def requeue_failures():
    """Check the failed subscriptions of the last sweep again (audited)."""
    reason = reason_or_flash(_("Give a reason for requeueing: it goes into the audit log."))
    state = sweep.read_state(db.session)
    if reason is not None and state is not None and state.failures:
        ids = operations.audit_requeue(db.session, current_user.identity.principal_id, reason, state.failures)
        db.session.commit()
        enqueue(sync_tasks.recheck_job, ids, queue="default")
        flash(_("%(num)d failed checks requeued.", num=len(ids)), "success")
    return redirect(url_for(".index"), 303)

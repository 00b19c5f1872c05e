"""/failed-events: archived Stripe events whose replay failed, and the admin's audited retry."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, url_for
from flask_babel import gettext as _

from backoffice.billing import operations
from backoffice.billing.lists import failed_events
from backoffice.extensions import db
from backoffice.web.actions import acting_operator, reason_or_flash
from backoffice.web.auth import admin_required
from backoffice.web.csv_export import csv_response
from backoffice.web.htmx import render_page_or_partial
from backoffice.web.listing import ListParams, ListSpec

bp = Blueprint("failed_events", __name__)

LIST = ListSpec("failed_events.index", sorts=("received",), default_sort="-received",
                csv_endpoint="failed_events.export")


@bp.get("/failed-events")
def index():
    """List the failed events, newest first, a page at a time."""
    params = ListParams.from_request(LIST)
    rows, total = failed_events.failed_events(db.session, page=params.page, per_page=params.per_page)
    pages = max(1, -(-total // params.per_page))
    return render_page_or_partial("failed_events/index.html", "failed_events/_results.html", rows=rows,
                                  total=total, page_number=params.page, pages=pages, per_page=params.per_page)


@bp.get("/failed-events.csv")
def export():
    """Every failed event as CSV (all pages)."""
    fields = failed_events.FailedEvent.CSV_FIELDS
    rows = ([getattr(row, name) for name in fields] for row in failed_events.all_failed_events(db.session))
    return csv_response("failed-events.csv", fields, rows)


@bp.post("/failed-events/<event_id>/retry")
@admin_required
def retry(event_id: str):
    """Queue the failed event's customer for replay again, audited with the admin's reason."""
    reason = reason_or_flash(_("Give a reason for the retry: it goes into the audit log."))
    if reason is None:
        return redirect(url_for(".index")), 303
    try:
        operations.retry_failed_event(db.session, event_id, acting_operator(), reason)
    except failed_events.NotRetryable:
        abort(404, description=_("No failed event %(id)s", id=event_id))
    flash(_("Retry of %(id)s queued; the event moves on once its customer is replayed.", id=event_id), "success")
    return redirect(url_for(".index")), 303

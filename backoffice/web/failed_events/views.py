"""/failed-events: archived Stripe events whose replay failed, and the admin's audited retry."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from flask import Blueprint, Response, abort, flash, redirect, request, stream_with_context, url_for
from flask_babel import gettext as _
from flask_login import current_user

from backoffice.billing import failed_events
from backoffice.billing.tasks import request_replay
from backoffice.extensions import db
from backoffice.web.auth import admin_required
from backoffice.web.htmx import render_page_or_partial

bp = Blueprint("failed_events", __name__)

PER_PAGE_DEFAULT, PER_PAGE_MIN, PER_PAGE_MAX = 25, 10, 100


def _int_arg(name: str, default: int, low: int, high: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or int(raw) < low or (high is not None and int(raw) > high):
        limit = f"{low}–{high}" if high is not None else f"≥ {low}"
        abort(400, description=_("%(name)s must be a whole number %(limit)s", name=name, limit=limit))
    return int(raw)


@bp.get("/failed-events")
def index():
    """List the failed events, newest first, a page at a time."""
    page = _int_arg("page", 1, 1)
    per_page = _int_arg("per_page", PER_PAGE_DEFAULT, PER_PAGE_MIN, PER_PAGE_MAX)
    rows, total = failed_events.failed_events(db.session, page=page, per_page=per_page)
    pages = max(1, -(-total // per_page))
    return render_page_or_partial("failed_events/index.html", "failed_events/_results.html", rows=rows,
                                  total=total, page_number=page, pages=pages, per_page=per_page)


@bp.get("/failed-events.csv")
def export():
    """Every failed event as CSV (all pages)."""
    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(failed_events.FailedEvent.CSV_FIELDS)
        for row in failed_events.all_failed_events(db.session):
            writer.writerow([getattr(row, name) for name in failed_events.FailedEvent.CSV_FIELDS])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
        yield buffer.getvalue()

    return Response(stream_with_context(lines()), mimetype="text/csv",
                    headers={"Content-Disposition": "attachment; filename=failed-events.csv"})


@bp.post("/failed-events/<event_id>/retry")
@admin_required
def retry(event_id: str):
    """Queue the failed event's customer for replay again, audited with the admin's reason."""
    reason = request.form.get("reason", "")
    if not reason.strip():
        flash(_("Give a reason for the retry: it goes into the audit log."), "error")
        return redirect(url_for(".index")), 303
    try:
        customer = failed_events.retry(db.session, event_id, current_user.identity.principal_id, reason)
    except failed_events.NotRetryable:
        abort(404, description=_("No failed event %(id)s", id=event_id))
    db.session.commit()
    request_replay(customer)
    flash(_("Retry of %(id)s queued; the event moves on once its customer is replayed.", id=event_id), "success")
    return redirect(url_for(".index")), 303

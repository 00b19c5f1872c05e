"""/billing-events: the ledger across accounts (effective rows, NoOp hidden), and each row's archived Stripe event."""
from __future__ import annotations

import json
from datetime import UTC, datetime

from flask import Blueprint, abort, current_app, render_template
from flask_babel import gettext as _
from sqlalchemy import select

from backoffice.billing.ledger.vocabulary import EventType
from backoffice.billing.lists import history
from backoffice.billing.lists.lenses import LENSES
from backoffice.billing.models import (
    BILLING_EVENT_TYPES,
    MOVEMENTS,
    StripeEvent,
    StripeEventDivergence,
    StripeEventState,
)
from backoffice.extensions import db
from backoffice.read.dashboard import PERIODS, window
from backoffice.web.auth import admin_required
from backoffice.web.csv_export import csv_response
from backoffice.web.formatting import BILLING_EVENT_LABELS, MOVEMENT_LABELS
from backoffice.web.htmx import render_list
from backoffice.web.listing import CURRENCY_CODES, ListParams, ListSpec, fetch_or_400

bp = Blueprint("billing_events", __name__)

# NoOp rows are never listed, so they are no choice either.
TYPES = tuple(kind for kind in BILLING_EVENT_TYPES if kind != EventType.NO_OP)
LIST = ListSpec("billing_events.index", sorts=("date", "account"), default_sort="-date",
                multi={"type": TYPES, "movement": MOVEMENTS, "currency": CURRENCY_CODES},
                single={"lens": tuple(LENSES), "period": tuple(str(days) for days in PERIODS)},
                max_values={"type": len(TYPES), "movement": len(MOVEMENTS), "currency": 20},
                csv_endpoint="billing_events.export")
CSV_HEADER = ("occurred_at", "event_type", "account_id", "account", "from_plan", "to_plan", "mrr_impact", "mrr_after",
              "currency", "corrected", "stripe_event_id")


@bp.before_request
def billing_only():
    if not current_app.config["PUBLIC_SUBSCRIPTION_ENABLED"]:
        abort(404)


def ledger_filter(params: ListParams) -> history.LedgerFilter:
    period = params.choice("period")
    since = None
    if period is not None:
        first = window(int(period), datetime.now(UTC)).first
        since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    return history.LedgerFilter(search=params.search, types=params.values("type"), lens=params.choice("lens"),
                                movements=params.values("movement"), since=since,
                                currencies=params.values("currency"))


@bp.get("/billing-events")
def index():
    """Every account's ledger rows, newest first: search by account, lenses, types, movements, period."""
    params = ListParams.from_request(LIST)
    page = fetch_or_400(lambda: history.list_ledger(
        db.session, ledger_filter(params), sort=params.sort, descending=params.descending, page=params.page,
        per_page=params.per_page, after=params.after))
    return render_list("billing_events/index.html", "billing_events/_results.html", params.current_url(),
                       params=params, page=page, types=TYPES, movements=MOVEMENTS,
                       period_options={None: _("All time"), **{str(days): _("Last %(num)d days", num=days)
                                                               for days in PERIODS}},
                       type_labels={kind: BILLING_EVENT_LABELS.get(kind, kind) for kind in TYPES},
                       movement_labels=MOVEMENT_LABELS, currencies=history.currencies_ledgered(db.session))


@bp.get("/billing-events.csv")
def export():
    """The filtered ledger rows, in the list's order, as CSV."""
    params = ListParams.from_request(LIST)
    rows = history.stream_ledger(db.session, ledger_filter(params), sort=params.sort, descending=params.descending)
    return csv_response("billing-events.csv", CSV_HEADER, (
        [row.occurred_at, row.event_type, row.tenant_id, row.tenant_name, *row.transition,
         row.amount_delta, row.committed_mrr, row.currency, row.corrected, row.stripe_event_id] for row in rows))


@bp.get("/stripe-events/<event_id>")
@admin_required
def stripe_event(event_id: str):
    """One archived Stripe event as it arrived, pretty-printed, with how it came (recovered or delivered) and any
    other body a redelivery carried."""
    event = db.session.get(StripeEvent, event_id)
    if event is None:
        abort(404, description=_("No archived Stripe event %(id)s.", id=event_id))
    divergences = db.session.scalars(select(StripeEventDivergence).where(
        StripeEventDivergence.stripe_event_id == event_id).order_by(StripeEventDivergence.received_at)).all()
    return render_template("billing_events/stripe_event.html", event=event, state=db.session.get(StripeEventState, event_id),
                           divergences=divergences, pretty=_pretty)


def _pretty(payload: object) -> str:
    return json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False)

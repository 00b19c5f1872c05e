"""/saas-metrics: ARR, ARPA, churn, retention, cohorts and LTV by month (read/saas_metrics.py, docs/metrics.md), and
the accounts behind any one figure (/saas-metrics/accounts, with its CSV). `/metrics` is Prometheus's."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import Blueprint, abort, current_app, render_template, request
from flask_babel import gettext as _
from flask_babel import ngettext

from backoffice.extensions import db
from backoffice.fx import rates
from backoffice.read import saas_metrics
from backoffice.web.csv_export import csv_response
from backoffice.web.formatting import money, rate
from backoffice.web.htmx import render_list, render_page_or_partial
from backoffice.web.listing import ListParams, ListSpec, fetch_or_400

bp = Blueprint("saas_metrics", __name__)

DEFAULT_PERIOD = 12
COHORT_VIEWS = ("logos", "mrr")
ROWS = ListSpec("saas_metrics.accounts", sorts=("account",), default_sort="account",
                single={"figure": saas_metrics.FIGURES}, references=("month",), csv_endpoint="saas_metrics.export")
CSV_HEADER = ("month", "account_id", "account", "subscription_id", "currency", "mrr_start", "mrr_end",
              *saas_metrics.MOVEMENTS, "cohort")


@bp.before_request
def billing_only():
    if not current_app.config["PUBLIC_SUBSCRIPTION_ENABLED"]:
        abort(404)


def _choice(name: str, allowed: tuple, default):
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if raw not in {str(value) for value in allowed}:
        abort(400, description=_("%(name)s must be one of %(choices)s.", name=name,
                                 choices=", ".join(str(value) for value in allowed)))
    return type(default)(raw)


def _currency() -> str:
    return current_app.config["PLATFORM_CURRENCY"]


def cohort_cells(row: saas_metrics.CohortRow, view: str, currency: str) -> list[tuple[int, str, str]]:
    """A cohort row's cells as the grid shows them: (heat 0–10, the share, its hover: the accounts or the MRR, the
    one figure the view shares out). Formatted here once rather than through the template's filters, which cost
    most of a 24-month grid's time."""
    cells = []
    for offset, (accounts, mrr) in enumerate(row.cells):
        share = row.logos(offset) if view == "logos" else row.revenue(offset)
        hover = ngettext("%(num)d account", "%(num)d accounts", accounts) if view == "logos" else money(mrr, currency)
        heat = int((Decimal(share or 0) * 10).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        cells.append((min(heat, 10), rate(share), hover))
    return cells


@dataclass(frozen=True)
class Shown:
    """What the page and its cohort card show, from the URL: the period, the grid's view, `through` (None: this
    month) and the day the figures are for (today, or the last day of `through`)."""

    period: int
    cohort_view: str
    through: date | None
    day: date

    def context(self) -> dict[str, Any]:
        return {"period": self.period, "cohort_view": self.cohort_view, "through": self.through,
                "currency": _currency()}


def _shown() -> Shown:
    """The page's parameters; 400 when one is malformed, or `through` is in the future."""
    period = _choice("period", saas_metrics.PERIODS, DEFAULT_PERIOD)
    cohort_view = _choice("cohort", COHORT_VIEWS, "logos")
    today = datetime.now(UTC).date()
    this_month, raw = today.replace(day=1), request.args.get("through")
    through = _parse_month(raw, "through") if raw else this_month
    if through > this_month:
        abort(400, description=_("through cannot be after this month."))
    if through == this_month:
        return Shown(period, cohort_view, None, today)
    return Shown(period, cohort_view, through, saas_metrics.month_end(through, today))


def _or_409(read: Callable[[], Any]) -> Any:
    """A read that needs exchange rates; 409 with the currency and day when one is missing."""
    try:
        return read()
    except rates.MissingRate as missing:
        abort(409, description=str(missing))


@bp.get("/saas-metrics")
def index():
    """The metrics of the last `period` months (this one to date); the cohort grid loads as a card of its own."""
    shown = _shown()
    figures = _or_409(lambda: saas_metrics.metrics(db.session, _currency(), shown.day, shown.period,
                                                   with_cohorts=False))
    return render_template("saas_metrics/index.html", figures=figures, periods=saas_metrics.PERIODS,
                           **shown.context())


@bp.get("/saas-metrics/cohorts")
def cohorts():
    """The cohort grid of the same period, as logos or MRR: the page's lazy card, and a page of its own without
    JavaScript. Apart from the months and tiles, so that neither waits for the other."""
    shown = _shown()
    rows = _or_409(lambda: saas_metrics.cohorts(db.session, _currency(),
                                                saas_metrics.period_months(shown.day, shown.period), shown.day))
    return render_page_or_partial("saas_metrics/cohorts.html", "saas_metrics/_cohorts.html", cohort_rows=rows,
                                  width=shown.period, cohort_cells=cohort_cells, **shown.context())


def _month(params: ListParams) -> date:
    return _parse_month(params.choice("month"))


def _parse_month(raw: str | None, name: str = "month") -> date:
    """A month written YYYY-MM, as its first day; 400 otherwise."""
    raw = raw or ""
    year, dash, month = raw.partition("-")
    if not (dash and len(year) == 4 and len(month) == 2 and (year + month).isascii() and (year + month).isdigit()
            and 1 <= int(month) <= 12 and int(year) >= 1970):
        abort(400, description=_("%(name)s must be a month written YYYY-MM.", name=name))
    return date(int(year), int(month), 1)


def _figure(params: ListParams) -> str:
    figure = params.choice("figure")
    if figure is None:
        abort(400, description=_("figure must be one of %(choices)s.", choices=", ".join(saas_metrics.FIGURES)))
    return figure


@bp.get("/saas-metrics/accounts")
def accounts():
    """The accounts one figure of one month counts or sums, a page at a time, each with its month's movements."""
    params = ListParams.from_request(ROWS)
    month, figure = _month(params), _figure(params)
    page = fetch_or_400(lambda: saas_metrics.rows_page(db.session, month, figure, page=params.page,
                                                       per_page=params.per_page, after=params.after))
    return render_list("saas_metrics/accounts.html", "saas_metrics/_accounts.html", params.current_url(),
                       params=params, page=page, month=month, figure=figure, currency=_currency())


@bp.get("/saas-metrics/accounts.csv")
def export():
    """Every account behind the figure, as CSV."""
    params = ListParams.from_request(ROWS)
    month, figure = _month(params), _figure(params)
    rows = ([row.month, row.tenant_id, row.tenant_name, row.subscription_id, row.currency, row.mrr_start,
             row.mrr_end, *(getattr(row, name) for name in saas_metrics.MOVEMENTS), row.cohort]
            for row in saas_metrics.all_rows(db.session, month, figure))
    return csv_response(f"saas-metrics-{figure}-{month:%Y-%m}.csv", CSV_HEADER, rows)

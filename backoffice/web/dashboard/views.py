"""/: the dashboard. The page is a frame of cards; each card loads on its own (`/dashboard/cards/<card>`), so
one slow card never holds up the others, and each can fail alone."""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import Blueprint, abort, current_app, request, url_for
from flask_babel import gettext as _

from backoffice.extensions import db
from backoffice.read import dashboard
from backoffice.web.charts import category_chart, integer, trend_chart
from backoffice.web.formatting import money, percent, plan_name
from backoffice.web.htmx import render_page_or_partial

bp = Blueprint("dashboard", __name__)

# Each card: whether it is a billing card (hidden when billing is not public).
CARDS = {
    "kpis": False, "mrr-trend": True, "revenue-trend": True, "mrr-movements": True, "plan-distribution": True,
    "account-growth": False, "user-logins": False, "recent-signups": False, "recent-billing-events": True,
}


def billing_enabled() -> bool:
    return bool(current_app.config["PUBLIC_SUBSCRIPTION_ENABLED"])


def period_or_400() -> int:
    raw = request.args.get("period")
    if raw is None:
        return dashboard.DEFAULT_PERIOD
    if raw not in {str(days) for days in dashboard.PERIODS}:
        abort(400, description=_("period must be one of %(choices)s.",
                                 choices=", ".join(str(days) for days in dashboard.PERIODS)))
    return int(raw)


def cards() -> list[str]:
    return [card for card, billing in CARDS.items() if billing_enabled() or not billing]


@bp.get("/")
def index():
    """The dashboard's frame: the period selector and one loading shell per card."""
    period = period_or_400()
    return render_page_or_partial("dashboard/index.html", "dashboard/_cards.html", period=period,
                                  periods=dashboard.PERIODS, cards=cards(),
                                  card_url=lambda card: url_for(".card", card=card, period=period))


@bp.get("/dashboard/cards/<card>")
def card(card: str):
    """One card for the period: its partial for htmx, a page of its own otherwise."""
    if card not in cards():
        abort(404)
    period = dashboard.window(period_or_400(), datetime.now(UTC))
    context = CARD_CONTEXT[card](period)
    return render_page_or_partial("dashboard/card.html", f"dashboard/_{card.replace('-', '_')}.html", card=card,
                                  period=period, **context)


def _currency() -> str:
    return current_app.config["PLATFORM_CURRENCY"]


def _money() -> Callable[[Any], str]:
    currency = _currency()
    return lambda value: money(Decimal(value), currency)


def _kpis(period: dashboard.Window) -> dict[str, Any]:
    return {"kpis": dashboard.kpis(db.session, _currency(), period)}


def _trend(chart_id: str, title: str, trend: dashboard.Trend, shown: Callable[[Any], str], kind: str,
           from_zero: bool = True) -> Any:
    return trend_chart(chart_id, title, trend.days, trend.current, trend.prior, shown, kind=kind,
                       value_heading=_("This period"), prior_heading=_("Prior period"), from_zero=from_zero,
                       bucket_days=trend.bucket_days)


def _mrr_trend(period: dashboard.Window) -> dict[str, Any]:
    trend = dashboard.mrr_trend(db.session, _currency(), period)
    # Scaled to the data: MRR moves by a few percent a month, which an axis from 0 flattens into a line.
    return {"chart": _trend("mrr-trend", _("MRR"), trend, _money(), "line", from_zero=False),
            "current_through": dashboard.data_current_through(db.session)}


def _revenue_trend(period: dashboard.Window) -> dict[str, Any]:
    trend = dashboard.revenue_trend(db.session, _currency(), period)
    return {"chart": _trend("revenue-trend", _("Revenue"), trend, _money(), "line"),
            "current_through": dashboard.data_current_through(db.session)}


def _account_growth(period: dashboard.Window) -> dict[str, Any]:
    trend = dashboard.account_growth(db.session, period)
    return {"chart": _trend("account-growth", _("New accounts per week") if trend.bucket_days == 7
                            else _("New accounts"), trend, integer, "bar")}


def _user_logins(period: dashboard.Window) -> dict[str, Any]:
    trend = dashboard.login_activity(db.session, period)
    return {"chart": _trend("user-logins", _("Sign-ins"), trend, integer, "bar")}


def _plan_distribution(period: dashboard.Window) -> dict[str, Any]:
    shares = dashboard.plan_distribution(db.session, current_app.config["PLAN_ORDER"])
    rows = [(plan_name(share.plan), share.accounts,
             _("%(accounts)s (%(percent)s)", accounts=integer(share.accounts), percent=percent(share.percent)))
            for share in shares]
    return {"shares": shares, "chart": category_chart("plan-distribution", _("Plan distribution"), rows,
                                                      value_heading=_("Accounts"))}


def _mrr_movements(period: dashboard.Window) -> dict[str, Any]:
    return {"movements": dashboard.mrr_movements(db.session, _currency(), period), "currency": _currency(),
            "day_before": period.first - timedelta(days=1), "current_through": dashboard.data_current_through(db.session)}


def _recent_signups(period: dashboard.Window) -> dict[str, Any]:
    return {"signups": dashboard.recent_signups(db.session)}


def _recent_billing_events(period: dashboard.Window) -> dict[str, Any]:
    return {"events": dashboard.recent_billing_events(db.session)}


CARD_CONTEXT: dict[str, Callable[[dashboard.Window], dict[str, Any]]] = {
    "kpis": _kpis, "mrr-trend": _mrr_trend, "revenue-trend": _revenue_trend, "mrr-movements": _mrr_movements,
    "plan-distribution": _plan_distribution, "account-growth": _account_growth, "user-logins": _user_logins,
    "recent-signups": _recent_signups, "recent-billing-events": _recent_billing_events,
}

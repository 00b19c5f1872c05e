"""/accounts: the list (search, filters, sort, pages), its CSV export and its side pane."""
from __future__ import annotations

from flask import current_app, redirect, request, url_for

from backoffice.billing.models import ACCOUNT_STATUSES
from backoffice.extensions import db
from backoffice.read import account_list, dashboard
from backoffice.web.accounts.common import billing_enabled, bp, overview_or_404, plan_order
from backoffice.web.csv_export import csv_response
from backoffice.web.formatting import ACCOUNT_STATUS_LABELS, plan_name
from backoffice.web.htmx import is_partial_request, render_list, render_page_or_partial
from backoffice.web.listing import CURRENCY_CODES, ListParams, ListSpec, fetch_or_400

BILLING_SORTS = ("mrr", "renewal", "status")
# Created on one of the last N UTC days, as the dashboard's periods count new accounts.
CREATED_PERIODS = tuple(str(days) for days in dashboard.PERIODS)
CSV_HEADER = ("id", "name", "plan", "status", "mrr", "current_price", "currency", "renewal_date", "country",
              "created_at", "drift_detected")


def list_spec(endpoint: str = "accounts.index") -> ListSpec:
    """The accounts list's parameters; billing filters and sorts exist only while billing is public."""
    billing = billing_enabled()
    return ListSpec(
        endpoint=endpoint, csv_endpoint="accounts.export", default_sort="name",
        sorts=tuple(s for s in account_list.ACCOUNT_SORTS if billing or s not in BILLING_SORTS),
        multi={"plan": plan_order(), **({"status": ACCOUNT_STATUSES, "currency": CURRENCY_CODES} if billing else {})},
        max_values={"currency": 20},
        flags=("unsynced", "driftDetected", "mrrMismatch") if billing else (),
        single={"created": CREATED_PERIODS},
    )


def account_filter(params: ListParams) -> account_list.AccountFilter:
    created = params.choice("created")
    return account_list.AccountFilter(search=params.search, plans=params.values("plan"),
                                      statuses=params.values("status"), unsynced=params.flag("unsynced"),
                                      drift_detected=params.flag("driftDetected"),
                                      mrr_mismatch=params.flag("mrrMismatch"), currencies=params.values("currency"),
                                      created_since=dashboard.period_start(int(created)) if created else None)


def reporting_currency() -> str:
    return current_app.config["PLATFORM_CURRENCY"]


@bp.get("/accounts")
def index():
    """The accounts list: search, filters, sort and page from the URL; the pane when `pane` names an account."""
    params = ListParams.from_request(list_spec())
    page = fetch_or_400(lambda: account_list.list_accounts(
        db.session, account_filter(params), sort=params.sort, descending=params.descending, page=params.page,
        per_page=params.per_page, after=params.after, plan_order=plan_order(), reporting=reporting_currency()))
    pane_id = request.args.get("pane")
    pane = overview_or_404(pane_id) if pane_id and not is_partial_request() else None
    return render_list("accounts/index.html", "accounts/_results.html", params.current_url(), params=params, page=page,
                                  pane=pane, plans=plan_order(), statuses=ACCOUNT_STATUSES,
                                  plan_labels={plan: plan_name(plan) for plan in plan_order()},
                                  status_labels=ACCOUNT_STATUS_LABELS,
                                  currencies=account_list.currencies_billed(db.session) if billing_enabled() else [])


@bp.get("/accounts.csv")
def export():
    """Every account the list's filters match, in its order, as CSV."""
    params = ListParams.from_request(list_spec())
    rows = account_list.stream_accounts(db.session, account_filter(params), sort=params.sort,
                                        descending=params.descending, plan_order=plan_order(),
                                        reporting=reporting_currency())
    billing = billing_enabled()

    def values(row: account_list.AccountRow) -> list[object]:
        money = [row.status, row.forward_mrr, row.current_price_amount, row.currency, row.renewal_at]
        return [row.id, row.name, row.plan, *(money if billing else [None] * len(money)), row.country,
                row.created_at, row.drift_detected if billing else None]

    return csv_response("accounts.csv", CSV_HEADER, (values(row) for row in rows))


@bp.get("/accounts/<tenant_id>/pane")
def pane(tenant_id: str):
    """The side pane of one account; without htmx, the list with the pane open."""
    if not is_partial_request():
        return redirect(url_for(".index", pane=tenant_id), 303)
    return render_page_or_partial("accounts/index.html", "accounts/_pane.html", pane=overview_or_404(tenant_id))

"""/accounts/<id>: the account's page, one URL per tab (Overview, Users, Invoices, Billing events)."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, request, url_for
from flask_login import current_user

from backoffice.accounts import members, people
from backoffice.accounts.models import USER_ROLES
from backoffice.billing.lists import history, invoices
from backoffice.billing.reconcile import sync as reconcile
from backoffice.extensions import db
from backoffice.read import account_overview
from backoffice.web.accounts import sync_wording
from backoffice.web.accounts.common import billing_enabled, bp, overview_or_404
from backoffice.web.htmx import is_partial_request, render_list
from backoffice.web.jobs.access import visible_job
from backoffice.web.listing import ListParams, ListSpec, fetch_or_400

TABS = ("overview", "users", "invoices", "billing_events")
BILLING_TABS = ("invoices", "billing_events")
PREVIEW_ROWS = 5


def _tab_context(tenant_id: str, tab: str) -> dict[str, object]:
    """The data of one tab of the detail page."""
    if tab == "overview":
        card = account_overview.subscription_card(db.session, tenant_id) if billing_enabled() else None
        context: dict[str, object] = {"card": card}
        if billing_enabled():
            context["invoice_rows"] = invoices.list_invoice_rows(
                db.session, invoices.InvoiceFilter(tenant_id=tenant_id), per_page=PREVIEW_ROWS).rows
            context["ledger_rows"] = history.list_ledger(
                db.session, history.LedgerFilter(tenant_id=tenant_id), per_page=PREVIEW_ROWS).rows
        return context
    if tab == "users":
        spec = ListSpec("accounts.section", sorts=people.USER_SORTS, default_sort="name", multi={"role": USER_ROLES})
        params = ListParams.from_request(spec)
        criteria = members.MemberFilter(search=params.search, roles=params.values("role"))
        page = fetch_or_400(lambda: members.list_members(
            db.session, tenant_id, criteria, sort=params.sort, descending=params.descending, page=params.page,
            per_page=params.per_page, after=params.after))
        return {"params": params, "page": page, "roles": USER_ROLES}
    if tab == "invoices":
        spec = ListSpec("accounts.section", sorts=("date", "amount"), default_sort="-date",
                        single={"kind": invoices.KINDS})
        params = ListParams.from_request(spec)
        criteria = invoices.InvoiceFilter(tenant_id=tenant_id, kind=params.choice("kind"))
        page = fetch_or_400(lambda: invoices.list_invoice_rows(
            db.session, criteria, sort=params.sort, descending=params.descending, page=params.page,
            per_page=params.per_page, after=params.after))
        return {"params": params, "page": page, "totals": invoices.invoice_totals(db.session, criteria)}
    spec = ListSpec("accounts.section", sorts=("date",), default_sort="-date")
    params = ListParams.from_request(spec)
    page = fetch_or_400(lambda: history.list_ledger(
        db.session, history.LedgerFilter(tenant_id=tenant_id), sort=params.sort, descending=params.descending,
        page=params.page, per_page=params.per_page, after=params.after))
    return {"params": params, "page": page}


def _detail(tenant_id: str, tab: str):
    if tab in BILLING_TABS and not billing_enabled():
        abort(404)
    overview = overview_or_404(tenant_id)
    tabs = [t for t in TABS if billing_enabled() or t not in BILLING_TABS]
    context = _tab_context(tenant_id, tab)
    canonical = context["params"].current_url() if "params" in context else request.path
    drift = account_overview.drift_state(db.session, tenant_id) if billing_enabled() else None
    sync_job = visible_job(request.args["sync"]) if billing_enabled() and request.args.get("sync") else None
    offer = (account_overview.recovery_state(db.session, tenant_id, datetime.now(UTC))
             if billing_enabled() and current_user.is_admin and not is_partial_request() else None)
    return render_list("accounts/detail.html", "accounts/_tab.html", canonical, overview=overview, tab=tab,
                       tabs=tabs, tab_urls={name: tab_url(tenant_id, name) for name in tabs},
                       stripe_url=overview.stripe_url, drift=drift, sync_job=sync_job, steps=reconcile.STEPS,
                       recovery=offer, sync_failure=sync_wording.sync_failure, drift_groups=sync_wording.grouped,
                       stale_field=sync_wording.stale_field, **context)


@bp.get("/accounts/<tenant_id>")
def detail(tenant_id: str):
    """The account's page, Overview tab."""
    return _detail(tenant_id, "overview")


@bp.get('/accounts/<tenant_id>/<any(users, invoices, "billing-events"):section>')
def section(tenant_id: str, section: str):
    """The account's page at one of its other tabs: Users, Invoices (each invoice with its credit notes and
    refunds as rows of their own), Billing events (its ledger, newest first)."""
    return _detail(tenant_id, section.replace("-", "_"))


def tab_url(tenant_id: str, tab: str) -> str:
    """The URL of one tab of the account's page (each tab is a URL of its own)."""
    if tab == "overview":
        return url_for(".detail", tenant_id=tenant_id)
    return url_for(".section", tenant_id=tenant_id, section=tab.replace("_", "-"))

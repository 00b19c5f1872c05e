"""/accounts: the list, its side pane, the account detail and its tabs."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from backoffice.accounts import people, queries
from backoffice.accounts.models import USER_ROLES
from backoffice.billing import operations
from backoffice.billing.ledger.rulebook import ReplaySettings
from backoffice.billing.lists import history, invoices
from backoffice.billing.models import ACCOUNT_STATUSES, Subscription
from backoffice.billing.reconcile import recovery, restatement
from backoffice.billing.reconcile import sync as reconcile
from backoffice.billing.reconcile import tasks as sync_tasks
from backoffice.billing.replay.tasks import gateway, request_replay
from backoffice.extensions import db
from backoffice.jobs import enqueue, job_status
from backoffice.stripe_gateway.dashboard import customer_url
from backoffice.web.actions import reason_or_flash
from backoffice.web.auth import admin_required
from backoffice.web.csv_export import csv_response
from backoffice.web.formatting import ACCOUNT_STATUS_LABELS, plan_name, sync_refusal
from backoffice.web.htmx import is_partial_request, render_list, render_page_or_partial, stop_polling
from backoffice.web.listing import ListParams, ListSpec, fetch_or_400

bp = Blueprint("accounts", __name__)

BILLING_SORTS = ("mrr", "renewal", "status")
TABS = ("overview", "users", "invoices", "billing_events")
BILLING_TABS = ("invoices", "billing_events")
PREVIEW_ROWS = 5
CSV_HEADER = ("id", "name", "plan", "status", "mrr", "current_price", "currency", "renewal_date", "country",
              "created_at", "drift_detected")


def billing_enabled() -> bool:
    return bool(current_app.config["PUBLIC_SUBSCRIPTION_ENABLED"])


def plan_order() -> tuple[str, ...]:
    return tuple(current_app.config["PLAN_ORDER"])


def list_spec(endpoint: str = "accounts.index") -> ListSpec:
    """The accounts list's parameters; billing filters and sorts exist only while billing is public."""
    billing = billing_enabled()
    return ListSpec(
        endpoint=endpoint, csv_endpoint="accounts.export", default_sort="name",
        sorts=tuple(s for s in queries.ACCOUNT_SORTS if billing or s not in BILLING_SORTS),
        multi={"plan": plan_order(), **({"status": ACCOUNT_STATUSES} if billing else {})},
        flags=("unsynced", "driftDetected", "mrrMismatch") if billing else (),
    )


def account_filter(params: ListParams) -> queries.AccountFilter:
    return queries.AccountFilter(search=params.search, plans=params.values("plan"), statuses=params.values("status"),
                                 unsynced=params.flag("unsynced"), drift_detected=params.flag("driftDetected"),
                                 mrr_mismatch=params.flag("mrrMismatch"))


def _account(tenant_id: str) -> queries.AccountRow:
    """The live account, or 404: what an action needs to know before it acts, without the whole overview."""
    account = queries.get_account(db.session, tenant_id, plan_order=plan_order())
    if account is None:
        abort(404, description=_("No account %(id)s.", id=tenant_id))
    return account


def _overview(tenant_id: str) -> queries.AccountOverview:
    overview = queries.account_overview(db.session, tenant_id, plan_order=plan_order(),
                                        platform_currency=current_app.config["PLATFORM_CURRENCY"], now=datetime.now(UTC))
    if overview is None:
        abort(404, description=_("No account %(id)s.", id=tenant_id))
    return overview


@bp.get("/accounts")
def index():
    """The accounts list: search, filters, sort and page from the URL; the pane when `pane` names an account."""
    params = ListParams.from_request(list_spec())
    page = fetch_or_400(lambda: queries.list_accounts(
        db.session, account_filter(params), sort=params.sort, descending=params.descending, page=params.page,
        per_page=params.per_page, after=params.after, plan_order=plan_order()))
    pane_id = request.args.get("pane")
    pane = _overview(pane_id) if pane_id and not is_partial_request() else None
    return render_list("accounts/index.html", "accounts/_results.html", params.current_url(), params=params, page=page,
                                  pane=pane, plans=plan_order(), statuses=ACCOUNT_STATUSES,
                                  plan_labels={plan: plan_name(plan) for plan in plan_order()},
                                  status_labels=ACCOUNT_STATUS_LABELS)


@bp.get("/accounts.csv")
def export():
    """Every account the list's filters match, in its order, as CSV."""
    params = ListParams.from_request(list_spec())
    rows = queries.stream_accounts(db.session, account_filter(params), sort=params.sort,
                                   descending=params.descending, plan_order=plan_order())
    billing = billing_enabled()

    def values(row: queries.AccountRow) -> list[object]:
        money = [row.status, row.forward_mrr, row.current_price_amount, row.currency, row.renewal_at]
        return [row.id, row.name, row.plan, *(money if billing else [None] * len(money)), row.country,
                row.created_at.isoformat(), row.drift_detected if billing else None]

    return csv_response("accounts.csv", CSV_HEADER, (values(row) for row in rows))


@bp.get("/accounts/<tenant_id>/pane")
def pane(tenant_id: str):
    """The side pane of one account; without htmx, the list with the pane open."""
    if not is_partial_request():
        return redirect(url_for(".index", pane=tenant_id), 303)
    return render_page_or_partial("accounts/index.html", "accounts/_pane.html", pane=_overview(tenant_id))


def _tab_context(tenant_id: str, tab: str) -> dict[str, object]:
    """The data of one tab of the detail page."""
    if tab == "overview":
        card = queries.subscription_card(db.session, tenant_id) if billing_enabled() else None
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
        criteria = queries.MemberFilter(search=params.search, roles=params.values("role"))
        page = fetch_or_400(lambda: queries.list_members(
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
    overview = _overview(tenant_id)
    customer = overview.account.stripe_customer_id
    stripe_url = customer_url(current_app.config["STRIPE_SECRET_KEY"], customer) if customer else None
    tabs = [t for t in TABS if billing_enabled() or t not in BILLING_TABS]
    context = _tab_context(tenant_id, tab)
    canonical = context["params"].current_url() if "params" in context else request.path
    drift = queries.drift_state(db.session, tenant_id) if billing_enabled() else None
    sync_job = job_status(request.args["sync"]) if billing_enabled() and request.args.get("sync") else None
    offer = (queries.recovery_state(db.session, tenant_id, datetime.now(UTC))
             if billing_enabled() and current_user.is_admin and not is_partial_request() else None)
    return render_list("accounts/detail.html", "accounts/_tab.html", canonical, overview=overview, tab=tab,
                       tabs=tabs, tab_urls={name: tab_url(tenant_id, name) for name in tabs}, stripe_url=stripe_url,
                       drift=drift, sync_job=sync_job, steps=reconcile.STEPS, recovery=offer, **context)


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


def _back_to(tenant_id: str, **args: str):
    """After an admin's POST: 303 to the account's page (without JavaScript too)."""
    return redirect(url_for(".detail", tenant_id=tenant_id, **args), 303)


@bp.post("/accounts/<tenant_id>/replay")
@admin_required
def replay(tenant_id: str):
    """Replay the account's archived Stripe events into the ledger again, audited with the admin's reason."""
    reason = reason_or_flash(_("Give a reason for the replay: it goes into the audit log."))
    if reason is None:
        return _back_to(tenant_id)
    try:
        customer = operations.audit_account_replay(db.session, tenant_id, current_user.identity.principal_id, reason)
    except operations.NothingToReplay:
        flash(_("This account has no Stripe customer, so there is nothing to replay."), "error")
        return _back_to(tenant_id)
    db.session.commit()
    request_replay(customer)
    flash(_("Replay queued: the ledger and projection are rebuilt from the archive in a moment."), "success")
    return _back_to(tenant_id)


@bp.post("/accounts/<tenant_id>/restate")
@admin_required
def restate(tenant_id: str):
    """Repair the account's ledger rows that were computed wrong by appending corrections (DESIGN §4.6), audited
    with the admin's reason and what changed."""
    reason = reason_or_flash(_("Give a reason for the restatement: it goes into the audit log."))
    if reason is None:
        return _back_to(tenant_id)
    customer = _account(tenant_id).stripe_customer_id
    if customer is None:
        flash(_("This account has no Stripe customer, so there is nothing to restate."), "error")
        return _back_to(tenant_id)
    result = restatement.restate(db.session, ReplaySettings.from_config(current_app.config), gateway(),
                                 operator_id=current_user.identity.principal_id, reason=reason, customers=[customer],
                                 tenant_id=tenant_id)
    db.session.commit()
    if result.unpriced:
        flash(_("Some prices or coupons of this account cannot be had from Stripe now; restate again later."), "error")
    if result.corrected:
        flash(ngettext("Restated: %(num)d correction appended; the rows keep what was believed before.",
                       "Restated: %(num)d corrections appended; the rows keep what was believed before.",
                       result.corrected), "success")
    elif not result.unpriced:
        flash(_("Nothing to restate: every row follows from the archive under today's rules and prices."), "success")
    return _back_to(tenant_id)


@bp.post("/accounts/<tenant_id>/drift/acknowledge")
@admin_required
def acknowledge_drift(tenant_id: str):
    """Clear the account's drift flag (its discrepancies stay on record), audited with the admin's reason."""
    reason = reason_or_flash(_("Give a reason for acknowledging the drift: it goes into the audit log."))
    if reason is None:
        return _back_to(tenant_id)
    _account(tenant_id)  # 404 for an unknown or deleted account
    try:
        count = operations.acknowledge_drift(db.session, tenant_id, current_user.identity.principal_id, reason,
                                             datetime.now(UTC))
    except operations.NoDriftToAcknowledge:
        abort(400, description=_("This account has no drift to acknowledge."))
    db.session.commit()
    flash(ngettext("Drift acknowledged; %(num)d discrepancy stays on record.",
                   "Drift acknowledged; %(num)d discrepancies stay on record.", count), "success")
    return _back_to(tenant_id)


@bp.post("/accounts/<tenant_id>/sync")
@admin_required
def sync(tenant_id: str):
    """Start a Sync of the account with Stripe (an RQ job), audited; the page then follows its progress."""
    reason = reason_or_flash(_("Give a reason for the sync: it goes into the audit log."))
    if reason is None:
        return _back_to(tenant_id)
    _account(tenant_id)
    try:
        reconcile.check_sync(db.session, tenant_id, stripe_configured=gateway() is not None)
    except reconcile.SyncRefused as refused:
        flash(sync_refusal(refused.code, refused.params), "error")
        return _back_to(tenant_id)
    # The job writes the audit entry with the outcome (the log is append-only; it is never updated).
    job = enqueue(sync_tasks.sync_job, tenant_id, current_user.identity.principal_id, reason, queue="high")
    return _back_to(tenant_id, sync=job.id)


@bp.post("/accounts/<tenant_id>/recovery")
@admin_required
def disaster_recovery(tenant_id: str):
    """Start a disaster recovery (DESIGN §4.11) from the admin's cutoff: a Sync that also restores the ledger
    rows after the cutoff and writes a baseline for older gaps; audited, followed like a Sync."""
    reason = reason_or_flash(_("Give a reason for the disaster recovery: it goes into the audit log."))
    if reason is None:
        return _back_to(tenant_id)
    _account(tenant_id)
    cutoff = _utc_moment(request.form.get("cutoff", ""))
    if cutoff is None:
        flash(_("The cutoff must be a date and time in UTC, such as 2026-01-31T12:00:00."), "error")
        return _back_to(tenant_id)
    try:
        target = reconcile.check_sync(db.session, tenant_id, stripe_configured=gateway() is not None)
    except reconcile.SyncRefused as refused:
        flash(sync_refusal(refused.code, refused.params), "error")
        return _back_to(tenant_id)
    problem = recovery.cutoff_problem(db.session.get(Subscription, target.subscription_id), cutoff, datetime.now(UTC))
    if problem is not None:
        flash(sync_refusal(problem), "error")
        return _back_to(tenant_id)
    job = enqueue(sync_tasks.sync_job, tenant_id, current_user.identity.principal_id, reason, cutoff.isoformat(),
                  queue="high")
    return _back_to(tenant_id, sync=job.id)


def _utc_moment(value: str) -> datetime | None:
    """A moment typed as ISO 8601 (a datetime-local field sends no zone: it is UTC), or None when it is not one."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@bp.get("/accounts/<tenant_id>/sync/<job_id>")
def sync_progress(tenant_id: str, job_id: str):
    """The Sync's progress element (it replaces itself each second), then its result; 286 and a reload of the
    page once it has ended."""
    status = job_status(job_id)
    if status is None:
        abort(404, description=_("No sync %(id)s: it may have finished long ago.", id=job_id))
    body = render_template("accounts/_sync.html", job=status, tenant_id=tenant_id, steps=reconcile.STEPS)
    if not status.ended:
        return body
    # A finished Sync changed much of the page (plan, MRR, ledger, drift): the page reloads, the result on top.
    response = stop_polling(body)
    response.headers["HX-Refresh"] = "true"
    return response

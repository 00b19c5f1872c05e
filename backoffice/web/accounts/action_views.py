"""/accounts/<id>/…: an admin's audited actions on the account, each one billing operation, and the Sync's progress.

Each action parses the form (the reason, a cutoff), calls its operation and words the outcome; after it, a 303
back to the account's page, without JavaScript too.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_babel.speaklater import LazyString

from backoffice.billing import operations
from backoffice.billing.reconcile import sync as reconcile
from backoffice.extensions import db
from backoffice.read import account_list
from backoffice.web.accounts.common import bp, plan_order
from backoffice.web.accounts.sync_wording import sync_failure
from backoffice.web.actions import acting_operator, reason_or_flash
from backoffice.web.auth import admin_required
from backoffice.web.formatting import sync_refusal
from backoffice.web.htmx import stop_polling
from backoffice.web.jobs.access import visible_job

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# An action's view, once its reason is known: (tenant id, reason) → response.
ActionView = Callable[[str, str], Any]


def _back_to(tenant_id: str, **args: str):
    """After an admin's POST: 303 to the account's page (without JavaScript too)."""
    return redirect(url_for(".detail", tenant_id=tenant_id, **args), 303)


def _asks_reason(prompt: LazyString, *, live: bool = True) -> Callable[[ActionView], Callable[[str], Any]]:
    """Hand the action the form's reason, or send the operator back asked for one (`prompt`); with `live`, 404 for
    an unknown or deleted account first, read from its row rather than the whole overview."""
    def decorate(view: ActionView) -> Callable[[str], Any]:
        @wraps(view)
        def with_reason(tenant_id: str) -> Any:
            reason = reason_or_flash(str(prompt))
            if reason is None:
                return _back_to(tenant_id)
            if live and account_list.get_account(db.session, tenant_id, plan_order=plan_order()) is None:
                abort(404, description=_("No account %(id)s.", id=tenant_id))
            return view(tenant_id, reason)
        return with_reason
    return decorate


@bp.post("/accounts/<tenant_id>/replay")
@admin_required
@_asks_reason(_l("Give a reason for the replay: it goes into the audit log."), live=False)
def replay(tenant_id: str, reason: str):
    """Replay the account's archived Stripe events into the ledger again, audited with the admin's reason."""
    try:
        queued = operations.replay_account(db.session, tenant_id, acting_operator(), reason)
    except operations.NoStripeCustomer:
        flash(_("This account has no Stripe customer, so there is nothing to replay."), "error")
        return _back_to(tenant_id)
    if queued is operations.ReplayQueued.QUEUE_UNAVAILABLE:
        flash(_("The job queue cannot be reached, so no replay was queued. Try again in a minute."), "error")
    elif queued is operations.ReplayQueued.ALREADY_QUEUED:
        flash(_("A replay of this account is already queued: the ledger and projection are rebuilt from the archive "
                "in a moment."), "success")
    else:
        flash(_("Replay queued: the ledger and projection are rebuilt from the archive in a moment."), "success")
    return _back_to(tenant_id)


@bp.post("/accounts/<tenant_id>/restate")
@admin_required
@_asks_reason(_l("Give a reason for the restatement: it goes into the audit log."))
def restate(tenant_id: str, reason: str):
    """Repair the account's ledger rows that were computed wrong by appending corrections (DESIGN §4.6), audited
    with the admin's reason and what changed."""
    try:
        result = operations.restate_account(db.session, tenant_id, acting_operator(), reason)
    except operations.NoStripeCustomer:
        flash(_("This account has no Stripe customer, so there is nothing to restate."), "error")
        return _back_to(tenant_id)
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
@_asks_reason(_l("Give a reason for acknowledging the drift: it goes into the audit log."))
def acknowledge_drift(tenant_id: str, reason: str):
    """Clear the account's drift flag (its discrepancies stay on record), audited with the admin's reason."""
    try:
        count = operations.acknowledge_drift(db.session, tenant_id, acting_operator(), reason, datetime.now(UTC))
    except operations.NoDriftToAcknowledge:
        abort(400, description=_("This account has no drift to acknowledge."))
    flash(ngettext("Drift acknowledged; %(num)d discrepancy stays on record.",
                   "Drift acknowledged; %(num)d discrepancies stay on record.", count), "success")
    return _back_to(tenant_id)


def _follow(tenant_id: str, start: Callable[[], str]):
    """Start a Sync's job and follow it on the account's page; a refusal is flashed in the operator's words."""
    try:
        job_id = start()
    except reconcile.SyncRefused as refused:
        flash(sync_refusal(refused.code, refused.params), "error")
        return _back_to(tenant_id)
    return _back_to(tenant_id, sync=job_id)


@bp.post("/accounts/<tenant_id>/sync")
@admin_required
@_asks_reason(_l("Give a reason for the sync: it goes into the audit log."))
def sync(tenant_id: str, reason: str):
    """Start a Sync of the account with Stripe (an RQ job), audited; the page then follows its progress."""
    return _follow(tenant_id, lambda: operations.start_sync(db.session, tenant_id, acting_operator(), reason))


@bp.post("/accounts/<tenant_id>/recovery")
@admin_required
@_asks_reason(_l("Give a reason for the disaster recovery: it goes into the audit log."))
def disaster_recovery(tenant_id: str, reason: str):
    """Start a disaster recovery (DESIGN §4.11) from the admin's cutoff: a Sync that also restores the ledger
    rows after the cutoff and writes a baseline for older gaps; audited, followed like a Sync."""
    cutoff = _utc_moment(request.form.get("cutoff", ""))
    if cutoff is None:
        flash(_("The cutoff must be a date and time in UTC, such as 2026-01-31T12:00:00."), "error")
        return _back_to(tenant_id)
    return _follow(tenant_id, lambda: operations.start_recovery(db.session, tenant_id, acting_operator(), reason,
                                                                cutoff, datetime.now(UTC)))


def _utc_moment(value: str) -> datetime | None:
    """A moment typed as ISO 8601 (a datetime-local field sends no zone: it is UTC), or None when it is not one."""
    try:
        moment = datetime.fromisoformat(value.strip())
        # Near year 1 or 9999 an offset moves the moment out of datetime's range (OverflowError).
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        return None
    # Stripe's times are seconds since 1970: a cutoff before that names no moment of any account's history.
    return moment if moment >= EPOCH else None


@bp.get("/accounts/<tenant_id>/sync/<job_id>")
def sync_progress(tenant_id: str, job_id: str):
    """The Sync's progress element (it replaces itself each second), then its result; 286 and a reload of the
    page once it has ended."""
    status = visible_job(job_id)
    if status is None:
        abort(404, description=_("No sync %(id)s: it may have finished long ago.", id=job_id))
    body = render_template("accounts/_sync.html", job=status, tenant_id=tenant_id, steps=reconcile.STEPS,
                           sync_failure=sync_failure)
    if not status.ended:
        return body
    # A finished Sync changed much of the page (plan, MRR, ledger, drift): the page reloads, the result on top.
    response = stop_polling(body)
    response.headers["HX-Refresh"] = "true"
    return response

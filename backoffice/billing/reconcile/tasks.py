"""RQ entry points of reconciliation: an admin's Sync of one account, and the scheduled platform walk."""
from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select

from backoffice.billing.models import Subscription
from backoffice.billing.reconcile.sync import SyncRefused, check_sync, failure_of, sync_account
from backoffice.billing.reconcile.walk import walk_events
from backoffice.billing.replay import Replayer, ReplaySettings
from backoffice.billing.replay.tasks import gateway, request_replay, run_replay
from backoffice.extensions import db
from backoffice.jobs import enqueue, report_progress
from backoffice.operators.audit import record_action

log = logging.getLogger(__name__)


def sync_job(tenant_id: str, operator_id: str | None = None, reason: str | None = None,
             cutoff: str | None = None) -> dict[str, Any]:
    """Sync one account with Stripe, reporting each step; with a `cutoff` (ISO 8601), a disaster recovery.

    An admin's Sync is audited once it has an outcome (the audit log is append-only, so the entry is written
    with its result rather than updated later)."""
    stripe = gateway()
    config = current_app.config
    action = ("disaster_recovery", {"cutoff": cutoff}) if cutoff else ("sync", None)
    reached: dict[str, Any] = {}  # the last step reported, to say what a failure kept

    def progress(**meta: Any) -> None:
        reached.update(meta)
        report_progress(**meta)
    try:
        target = check_sync(db.session, tenant_id, stripe_configured=stripe is not None)
        replayer = Replayer(db.session, ReplaySettings.from_config(config), stripe)
        result = sync_account(
            db.session, target, stripe, lambda customer, restore: run_replay(replayer, customer, restore=restore),
            platform_currency=config["PLATFORM_CURRENCY"], plan_order=tuple(config["PLAN_ORDER"]),
            rules=replayer.rules, now=datetime.now(UTC), progress=progress,
            cutoff=datetime.fromisoformat(cutoff) if cutoff else None)
    except SyncRefused as refused:
        db.session.rollback()
        result = {"refused": refused.code, "refused_params": refused.params}
        report_progress(step="done", refused=refused.code)
    except Exception as error:
        db.session.rollback()
        # The page and the audit log say what failed and what was kept; the exception stays on the job for admins.
        failure = failure_of(error, reached.get("step"), reached.get("recovered") or 0)
        report_progress(failed=failure.code, kept=failure.kept)
        _audit(action, tenant_id, operator_id, reason, {"failed": failure.code, "outcome": failure.sentence})
        raise
    for customer in result.get("walk_customers", ()):
        request_replay(customer)
    _audit(action, tenant_id, operator_id, reason, _summary(result))
    return result


def _audit(action: tuple[str, dict[str, Any] | None], tenant_id: str, operator_id: str | None, reason: str | None,
           result: dict[str, Any]) -> None:
    if operator_id is None:
        return
    name, parameters = action
    record_action(db.session, operator_id, name, reason or "", tenant_id=tenant_id, parameters=parameters,
                  result=result)
    db.session.commit()


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    if "refused" in result:
        return {"refused": result["refused"], **result["refused_params"]}
    return {"recovered": result["recovered"], "appended": result["appended"],
            "discrepancies": len(result["discrepancies"]), **({"recovery": result["recovery"]}
                                                               if "recovery" in result else {})}


def walk_job() -> dict[str, Any]:
    """The scheduled platform-wide `events.list` walk; queues a replay of every customer it recovered events of."""
    stripe = gateway()
    if stripe is None:
        log.info("events.list walk skipped: Stripe is not configured")
        return {"skipped": "Stripe is not configured"}
    report = walk_events(db.session, stripe, datetime.now(UTC), progress=lambda r: report_progress(**r.as_dict()))
    db.session.commit()
    for customer in report.customers:
        request_replay(customer)
    return report.as_dict()


def sweep_job() -> dict[str, Any]:
    """The drift sweep's coordinator: list Stripe's subscriptions a page at a time, one chunk job per page."""
    from backoffice.billing.reconcile import sweep

    stripe = gateway()
    if stripe is None:
        log.info("drift sweep skipped: Stripe is not configured")
        return {"skipped": "Stripe is not configured"}
    sweep_id = uuid.uuid4().hex[:12]
    state = sweep.run_listing(db.session, stripe, lambda page: enqueue(sweep_page_job, page, queue="low"),
                              datetime.now(UTC), sweep_id)
    return {"sweep": sweep_id, "due": state.due if state else 0, "pages": state.pages if state else 0,
            "error": state.error if state else None}


def sweep_now() -> dict[str, Any]:
    """The drift sweep in this process, each listing page checked as it comes (the demo load's last step)."""
    from backoffice.billing.reconcile import sweep

    stripe = gateway()
    if stripe is None:
        return {"skipped": "Stripe is not configured"}
    checked = failed = 0

    def check(page: list[dict[str, Any]]) -> None:
        nonlocal checked, failed
        result = sweep_page_job(page)
        checked, failed = checked + result["checked"], failed + result["failed"]

    state = sweep.run_listing(db.session, stripe, check, datetime.now(UTC), uuid.uuid4().hex[:12])
    return {"checked": checked, "failed": failed, "error": state.error if state else None}


def sweep_page_job(page: list[dict[str, Any]]) -> dict[str, Any]:
    """Check the due subscriptions one page of Stripe's listing covers; list the failures on the sweep."""
    from backoffice.billing.ledger.rulebook import load_pricing
    from backoffice.billing.reconcile import sweep

    config = current_app.config
    now = datetime.now(UTC)
    pricing = load_pricing(db.session, tuple(config["PLAN_ORDER"]), gateway())
    checked, failures = sweep.check_page(db.session, page, pricing, now=now)
    sweep.add_failures(db.session, failures, now)
    db.session.commit()
    report_progress(checked=checked, failed=len(failures))
    return {"checked": checked, "failed": len(failures)}


def recheck_job(subscription_ids: list[str]) -> dict[str, Any]:
    """Requeue failed checks: sync each account again in detect mode through a fresh listing of its customer."""
    from backoffice.billing.ledger.rulebook import load_pricing
    from backoffice.billing.reconcile import sweep

    stripe = gateway()
    if stripe is None:
        return {"skipped": "Stripe is not configured"}
    config = current_app.config
    now = datetime.now(UTC)
    pricing = load_pricing(db.session, tuple(config["PLAN_ORDER"]), stripe)
    customers = db.session.scalars(select(Subscription.stripe_customer_id).where(Subscription.id.in_(subscription_ids)))
    page = [sweep._slim(s) for customer in customers if customer for s in stripe.customer_subscriptions(customer)]
    checked, failures = sweep.check_page(db.session, page, pricing, now=now, staleness=timedelta(0))
    db.session.commit()
    return {"checked": checked, "failed": len(failures)}

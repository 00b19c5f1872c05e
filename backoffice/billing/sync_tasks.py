"""RQ entry points of reconciliation: an admin's Sync of one account, and the scheduled platform walk."""
from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from flask import current_app

from backoffice.billing.event_recovery import walk_events
from backoffice.billing.reconcile import SyncRefused, check_sync, sync_account
from backoffice.billing.replay import Replayer, ReplaySettings
from backoffice.billing.tasks import gateway, request_replay, run_replay
from backoffice.extensions import db
from backoffice.jobs import report_progress
from backoffice.operators.audit import record_action

log = logging.getLogger(__name__)


def sync_job(tenant_id: str, operator_id: str | None = None, reason: str | None = None) -> dict[str, Any]:
    """Sync one account with Stripe, reporting each step. An admin's Sync is audited once it has an outcome
    (the audit log is append-only, so the entry is written with its result rather than updated later)."""
    stripe = gateway()
    config = current_app.config
    try:
        target = check_sync(db.session, tenant_id, stripe_configured=stripe is not None)
        replayer = Replayer(db.session, ReplaySettings.from_config(config), stripe)
        result = sync_account(
            db.session, target, stripe, lambda customer: run_replay(replayer, customer),
            platform_currency=config["PLATFORM_CURRENCY"], plan_order=tuple(config["PLAN_ORDER"]),
            now=datetime.now(UTC), progress=report_progress)
    except SyncRefused as refused:
        db.session.rollback()
        result = {"refused": refused.code, "refused_params": refused.params}
        report_progress(step="done", refused=refused.code)
    except Exception as error:
        db.session.rollback()
        _audit(tenant_id, operator_id, reason, {"failed": f"{type(error).__name__}: {error}"[:500]})
        raise
    for customer in result.get("walk_customers", ()):
        request_replay(customer)
    _audit(tenant_id, operator_id, reason, _summary(result))
    return result


def _audit(tenant_id: str, operator_id: str | None, reason: str | None, result: dict[str, Any]) -> None:
    if operator_id is None:
        return
    record_action(db.session, operator_id, "sync", reason or "", tenant_id=tenant_id, result=result)
    db.session.commit()


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    if "refused" in result:
        return {"refused": result["refused"], **result["refused_params"]}
    return {"recovered": result["recovered"], "appended": result["appended"],
            "discrepancies": len(result["discrepancies"])}


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

"""Operator actions on the ledger: one function each, taking the acting operator and the reason.

Each checks its guards, does the work, writes its audit entry and commits: a view (or a command) parses,
calls one of these and words the outcome, and never composes an audited action itself. An action that
queues a job commits first, so no job ever runs for an action the audit log lacks. A Sync and a disaster
recovery are audited by their job instead, once they have an outcome (the log is append-only).
"""
from __future__ import annotations

import enum
from datetime import datetime

from flask import current_app
from redis.exceptions import RedisError
from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.billing.ledger.rulebook import ReplaySettings
from backoffice.billing.lists import failed_events
from backoffice.billing.models import Subscription
from backoffice.billing.reconcile import recovery, restatement, sweep
from backoffice.billing.reconcile import tasks as reconcile_tasks
from backoffice.billing.reconcile.sync import SyncRefused, SyncTarget, check_sync
from backoffice.billing.replay.tasks import gateway, request_replay
from backoffice.jobs import enqueue
from backoffice.operators.audit import record_action


class NoStripeCustomer(ValueError):
    """The account has no Stripe customer: there is no archive to replay, nothing to restate."""


class NoDriftToAcknowledge(ValueError):
    """The account's subscription has no drift flagged (or no subscription at all)."""


def _require_reason(reason: str) -> None:
    if not reason.strip():
        raise ValueError("a reason is required")


def _customer_of(session: Session, tenant_id: str) -> str:
    customer_id = session.scalar(select(Subscription.stripe_customer_id).where(Subscription.tenant_id == tenant_id))
    if customer_id is None:
        raise NoStripeCustomer(tenant_id)
    return customer_id


class ReplayQueued(enum.Enum):
    """What asking for a replay found: a job queued now, a live one already queued, or no queue to ask."""

    QUEUED = "queued"
    ALREADY_QUEUED = "already_queued"
    QUEUE_UNAVAILABLE = "queue_unavailable"


def replay_account(session: Session, tenant_id: str, operator_id: str, reason: str) -> ReplayQueued:
    """Queue a replay of the account's archived events into the ledger, audited; say whether a job is queued.

    ALREADY_QUEUED only when a live job is queued: a marker whose job was lost is replaced by a new job (QUEUED).
    """
    _require_reason(reason)
    customer_id = _customer_of(session, tenant_id)
    record_action(session, operator_id, "replay", reason, tenant_id=tenant_id, parameters={"customer": customer_id})
    session.commit()
    try:
        return ReplayQueued.QUEUED if request_replay(customer_id) else ReplayQueued.ALREADY_QUEUED
    except RedisError:
        return ReplayQueued.QUEUE_UNAVAILABLE


def restate_account(session: Session, tenant_id: str, operator_id: str, reason: str) -> restatement.Restatement:
    """Append corrections to the account's rows computed wrong (DESIGN §4.6), audited with what changed."""
    customer_id = _customer_of(session, tenant_id)
    result = restatement.restate(session, ReplaySettings.from_config(current_app.config), gateway(),
                                 operator_id=operator_id, reason=reason, customers=[customer_id], tenant_id=tenant_id)
    session.commit()
    return result


def acknowledge_drift(session: Session, tenant_id: str, operator_id: str, reason: str, now: datetime) -> int:
    """Clear the account's drift flag, keeping its discrepancies for the record; audited. Return how many
    discrepancies were acknowledged."""
    _require_reason(reason)
    subscription = session.scalar(select(Subscription).where(Subscription.tenant_id == tenant_id).with_for_update())
    if subscription is None or not subscription.has_drift_detected:
        raise NoDriftToAcknowledge(tenant_id)
    subscription.has_drift_detected = False
    subscription.drift_acknowledged_at = now
    subscription.drift_acknowledged_by = operator_id
    # Marked one by one: a later check finding the same discrepancy keeps it acknowledged (drift.record).
    subscription.drift_discrepancies = [{**item, "acknowledged": True} for item in subscription.drift_discrepancies or []]
    kinds = sorted({str(item.get("kind")) for item in subscription.drift_discrepancies})
    count = len(subscription.drift_discrepancies or [])
    record_action(session, operator_id, "acknowledge_drift", reason, tenant_id=tenant_id,
                  parameters={"kinds": kinds}, result={"acknowledged": count})
    session.commit()
    return count


def start_sync(session: Session, tenant_id: str, operator_id: str, reason: str) -> str:
    """Start a Sync of the account with Stripe (DESIGN §2.3) as a job; return the job's id. SyncRefused says
    why it cannot run."""
    _require_reason(reason)
    _sync_target(session, tenant_id)
    return _queue_sync(tenant_id, operator_id, reason)


def start_recovery(session: Session, tenant_id: str, operator_id: str, reason: str, cutoff: datetime,
                   now: datetime) -> str:
    """Start a disaster recovery from `cutoff` (DESIGN §4.11): a Sync that also restores the ledger rows after
    it. Return the job's id; SyncRefused says why it cannot run, the cutoff's problems included."""
    _require_reason(reason)
    target = _sync_target(session, tenant_id)
    problem = recovery.cutoff_problem(session.get(Subscription, target.subscription_id), cutoff, now)
    if problem is not None:
        raise SyncRefused(problem, f"the cutoff cannot be used: {problem}")
    return _queue_sync(tenant_id, operator_id, reason, cutoff.isoformat())


def _sync_target(session: Session, tenant_id: str) -> SyncTarget:
    return check_sync(session, tenant_id, stripe_configured=gateway() is not None)


def _queue_sync(tenant_id: str, operator_id: str, reason: str, cutoff: str | None = None) -> str:
    return enqueue(reconcile_tasks.sync_job, tenant_id, operator_id, reason, cutoff, queue="high", owner=operator_id).id


def start_sweep(session: Session, operator_id: str, reason: str) -> None:
    """Start the drift sweep now (DESIGN §2.4), audited."""
    _require_reason(reason)
    record_action(session, operator_id, "sweep", reason)
    session.commit()
    enqueue(reconcile_tasks.sweep_job, queue="default")


def requeue_sweep_failures(session: Session, operator_id: str, reason: str) -> int:
    """Check the last sweep's failed subscriptions again, audited; return how many (0: none failed, nothing done)."""
    _require_reason(reason)
    state = sweep.read_state(session)
    if state is None or not state.failures:
        return 0
    ids = sorted({failure["subscription"] for failure in state.failures})
    record_action(session, operator_id, "sweep", reason, parameters={"requeued": len(ids)})
    session.commit()
    enqueue(reconcile_tasks.recheck_job, ids, queue="default")
    return len(ids)


def retry_failed_event(session: Session, event_id: str, operator_id: str, reason: str) -> str | None:
    """Replay a failed event's customer again (DESIGN §4.7), audited; return the customer (None: the event names
    none). failed_events.NotRetryable when the event is not, or no longer, failed."""
    target = failed_events.retry_target(session, event_id)
    if not reason.strip():
        raise ValueError("a reason is required")
    record_action(session, operator_id, "retry_event", reason, tenant_id=target.tenant_id,
                  parameters={"stripe_event_id": event_id, "customer": target.customer_id})
    session.commit()
    request_replay(target.customer_id)
    return target.customer_id


def queue_replay(customer_id: str | None) -> bool:
    """Queue the replay a newly archived Stripe event asks for; tell whether one was queued (the webhook's door to
    the replay queue: one Redis call when one is queued already, no query; Stripe acts here, not an operator, so
    nothing is audited). Redis slow or away raises RedisError within REDIS_SOCKET_TIMEOUT, or at once while its
    circuit is open: the event is archived pending all the same, and the pending sweeper queues it later."""
    return request_replay(customer_id)

"""An admin's Sync of one account with Stripe (DESIGN §2.3): recover missed events, replay, detect drift.

Steps, each reported to the page that polls the job: pull (the platform-wide `events.list` walk, or one
that finished within the last minute), fetch the customer's live subscription, replay the customer from
the archive, detect drift against the refreshed projection and Stripe's state. The guards come first and
say plainly why a Sync cannot run.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backoffice.billing.ledger.pricing import MissingKnowledge, Pricing, customer_tax_rate
from backoffice.billing.ledger.resolvers import BasilResolver, ref_id
from backoffice.billing.ledger.rulebook import load_pricing
from backoffice.billing.models import BillingEvent, Subscription
from backoffice.billing.reconcile import drift, recovery
from backoffice.billing.reconcile.walk import walk_unless_fresh
from backoffice.billing.replay import Restore
from backoffice.stripe_gateway.errors import StripeRequestFailed, StripeUnavailable

# The steps a Sync goes through, in order, as the progress element names them.
STEPS = ("pulling", "fetching", "replaying", "detecting", "done")


class SyncRefused(ValueError):
    """A Sync that cannot run: `code` names the reason (the web layer words it), `params` its details."""

    def __init__(self, code: str, message: str, **params: str):
        super().__init__(message)
        self.code, self.params = code, params


@dataclass(frozen=True)
class SyncFailure:
    """A Sync that stopped part way: `code` what failed, `kept` what stays of it (both worded by the web layer),
    and `sentence`, the same in English for the audit log, which keeps plain text rather than an exception."""

    code: str  # "stripe_unreachable", "stripe_refused" or "unexpected"
    kept: str  # "nothing" was stored, the events "pulled" stay archived, or the ledger was also "replayed"
    sentence: str


# What a step has committed by the time it runs: the walk's events from "fetching" on, a replay during "detecting"
# (a replay that fails rolls back to its savepoint, so "replaying" itself leaves the ledger as it was).
KEPT_BY_STEP = {"fetching": "pulled", "replaying": "pulled", "detecting": "replayed"}
KEPT_SAID = {"nothing": "nothing was changed",
             "pulled": "the missed events already pulled stay in the archive and the ledger is unchanged",
             "replayed": "the missed events and the replayed ledger are kept, but drift was not checked"}


def failure_of(error: BaseException, step: str | None, recovered: int = 0) -> SyncFailure:
    """Say what failed, what was kept and what to do, for a Sync that raised `error` during `step` after its walk
    recovered `recovered` missed events."""
    if isinstance(error, StripeUnavailable):
        code, failed, todo = ("stripe_unreachable", "Stripe could not be reached",
                              "Retry in a few minutes; if it keeps failing, check that the worker can reach Stripe.")
    elif isinstance(error, StripeRequestFailed):
        code, failed, todo = ("stripe_refused", "Stripe refused a request",
                              "Retrying will not help until the cause in the technical detail is fixed.")
    else:
        code, failed, todo = ("unexpected", "The sync stopped on an unexpected error",
                              "Retry once; if it fails again, report the technical detail.")
    kept = KEPT_BY_STEP.get(step or "", "nothing")
    if kept == "pulled" and not recovered:  # a walk that found nothing (or could not reach Stripe) stored nothing
        kept = "nothing"
    return SyncFailure(code, kept, f"{failed}, so the sync stopped: {KEPT_SAID[kept]}. {todo}")


@dataclass(frozen=True)
class SyncTarget:
    tenant_id: str
    subscription_id: str
    customer_id: str


def check_sync(session: Session, tenant_id: str, *, stripe_configured: bool) -> SyncTarget:
    """The account's subscription and customer, or SyncRefused with the reason."""
    if not stripe_configured:
        raise SyncRefused("not_configured", "Stripe is not configured (STRIPE_SECRET_KEY)")
    row = session.execute(select(Subscription.id, Subscription.stripe_customer_id)
                          .where(Subscription.tenant_id == tenant_id)).first()
    if row is None or row.stripe_customer_id is None:
        raise SyncRefused("no_customer", "the account has no Stripe customer")
    return SyncTarget(tenant_id, row.id, row.stripe_customer_id)


def live_of(subscriptions: list[dict[str, Any]], pricing: Pricing, *,
            invoices: list[dict[str, Any]] | None = None) -> drift.LiveSubscription:
    """The state the projection should hold, from a customer's Stripe subscriptions (newest first): the newest
    not ended; no plan and not cancelling when every one has ended or there is none. With the customer's
    invoices, also the monthly price, as the projection computes it (the VAT rate of the customer's invoices
    for tax-inclusive prices)."""
    current = next((s for s in subscriptions if s.get("status") not in ("canceled", "incomplete_expired")), None)
    if current is None:
        return drift.LiveSubscription(None, False, None, None)
    resolver = BasilResolver()  # item prices and currency read the same in every API version
    items = resolver.subscription_items(current)
    try:
        plan = pricing.plan(items)
    except MissingKnowledge:
        plan = None
    amount = None
    # A discounted subscription's list names its discounts by id only; its price is not compared rather than
    # guessed (the plan, currency and cancellation still are).
    discounted = bool(current.get("discounts") or current.get("discount"))
    if invoices is not None and plan is not None and not discounted:
        own = [invoice for invoice in invoices if ref_id(invoice.get("subscription")) == current.get("id")
               or ref_id(((invoice.get("parent") or {}).get("subscription_details") or {}).get("subscription"))
               == current.get("id")]
        try:
            amount = pricing.subscription(current, None, resolver, pricing.lookup(), customer_tax_rate(own)).current
        except MissingKnowledge:  # a price that cannot be had is not compared, not guessed
            amount = None
    return drift.LiveSubscription(plan, bool(current.get("cancel_at_period_end")), amount,
                                  resolver.subscription_currency(current))


def live_subscription(gateway: Any, customer_id: str, pricing: Pricing) -> tuple[drift.LiveSubscription, list[dict]]:
    """Stripe's current state of the customer's subscription, and the customer's resources the coverage check
    reads (subscriptions, invoices, credit notes, schedules)."""
    subscriptions = gateway.customer_subscriptions(customer_id)
    resources = list(subscriptions)
    invoices = gateway.customer_objects("invoices", customer_id)
    resources += invoices
    for kind in ("credit_notes", "subscription_schedules"):
        resources += gateway.customer_objects(kind, customer_id)
    return live_of(subscriptions, pricing, invoices=invoices), resources


def sync_account(session: Session, target: SyncTarget, gateway: Any, replay: Callable[[str, Restore], Any], *,
                 platform_currency: str, plan_order: tuple[str, ...], now: datetime, rules: Any = None,
                 cutoff: datetime | None = None, progress: Callable[..., None] = lambda **_: None) -> dict[str, Any]:
    """Run the Sync; commit after each step so the page sees its effects as they land.

    The replay also writes the missing rows of processed events Stripe still lists (30 days). With a `cutoff`
    it is a disaster recovery (DESIGN §4.11): the missing rows after the cutoff, and a baseline at it when
    Stripe objects up to it have no archived event.
    """
    subscription = session.get(Subscription, target.subscription_id)
    problem = recovery.cutoff_problem(subscription, cutoff, now) if cutoff is not None else None
    if problem is not None:
        raise SyncRefused(problem, f"the cutoff {cutoff} cannot be used ({problem})", cutoff=str(cutoff))
    progress(step="pulling")
    walk = walk_unless_fresh(session, gateway, now)
    session.commit()
    progress(step="fetching", recovered=walk.recovered, walk=walk.as_dict())
    pricing = load_pricing(session, plan_order, gateway)
    live, resources = live_subscription(gateway, target.customer_id, pricing)
    has_subscription = any(resource.get("object") == "subscription" for resource in resources)
    progress(step="replaying", recovered=walk.recovered)
    restore = Restore(now - drift.RECOVERY_WINDOW)
    recovered_history = None
    if cutoff is not None:
        restore = Restore(cutoff)
        gaps = recovery.gaps_up_to(drift.coverage_discrepancies(session, target.customer_id, resources, now,
                                                                subscription.history_complete_from), cutoff)
        if gaps:
            currency = live.currency or subscription.current_price_currency or platform_currency
            baseline = recovery.baseline_row(session, subscription, resources, cutoff, pricing, currency)
            restore = Restore(cutoff, baseline)
            subscription.history_complete_from = cutoff
            recovered_history = {"cutoff": cutoff.isoformat(), "gaps": len(gaps), "currency": currency,
                                 "baseline": str(baseline.committed_mrr),
                                 "baseline_id": baseline.stripe_event_id}
        else:
            recovered_history = {"cutoff": cutoff.isoformat(), "gaps": 0}
    before = _ledger_rows(session, target.subscription_id)
    replay(target.customer_id, restore)
    appended = _ledger_rows(session, target.subscription_id) - before
    progress(step="detecting", recovered=walk.recovered, appended=appended)
    session.refresh(subscription)
    found = drift.durable_discrepancies(session, subscription)
    if has_subscription or subscription.plan:
        found += drift.state_discrepancies(subscription, live)
    found += drift.coverage_discrepancies(session, target.customer_id, resources, now,
                                          subscription.history_complete_from)
    if rules is not None:  # the replayer's own rules: the same catalog and coupon lookups as the replay
        found += drift.stale_rows(session, target.customer_id, rules)
    drift.record(session, subscription.id, found, now)
    session.commit()
    result = {"recovered": walk.recovered, "appended": appended, "walk": walk.as_dict(),
              "walk_customers": sorted(walk.customers - {target.customer_id}),
              "discrepancies": [item.as_json() for item in found], "clean": not found}
    if recovered_history is not None:
        result["recovery"] = recovered_history
    progress(step="done", recovered=walk.recovered, appended=appended, clean=not found,
             discrepancies=result["discrepancies"])
    return result


def _ledger_rows(session: Session, subscription_id: str) -> int:
    return session.scalar(select(func.count()).where(BillingEvent.__table__.c.subscription_id == subscription_id))

"""The assertions of `flask billing prove`, each with its figures and its first counter-examples.

- every Stripe event is archived (the walk recovered what the webhook dropped);
- `verify` finds nothing (the ledger, and the payments where verify checks them);
- no `Unclassified` row in the effective ledger;
- every subscription's stored forward MRR equals what Stripe's objects say (`stripe_oracle`, independent of
  Backoffice's pricing);
- in each billing currency Σ forward MRR = Σ latest effective committed MRR = Σ effective deltas = Σ mrr_daily, and
  the MRR trend's last point = those converted into the reporting currency at today's rates (docs/currencies.md);
- revenue tile = the chart's end; in each billing currency Σ lifetime value = Σ revenue movements = the Invoices
  total over the same tenants.
"""
from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import stripe
from flask import Flask
from sqlalchemy import func, select

from backoffice.accounts.models import Tenant
from backoffice.billing.models import (
    MrrDaily,
    StripeEvent,
    StripeEventState,
    Subscription,
    effective_billing_events,
)
from backoffice.demo.prove_lifecycles import LifecycleDriver
from backoffice.demo.stripe_oracle import StripeOracle
from backoffice.extensions import db

SHOWN = 5  # counter-examples printed per check
ZERO = Decimal("0.00")
VIEW = effective_billing_events


@dataclass
class Check:
    name: str
    passed: bool
    figures: str
    counter_examples: list[str] = field(default_factory=list)
    failures: int = 0
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        verdict = "PASS" if self.passed else "FAIL"
        lines = [f"{verdict}  {self.name}: {self.figures}"]
        lines += [f"      note: {note}" for note in self.notes]
        lines += [f"      e.g. {example}" for example in self.counter_examples[:SHOWN]]
        if self.failures > SHOWN:
            lines.append(f"      … and {self.failures - SHOWN} more")
        return lines


def check(name: str, figures: str, examples: list[str], passed: bool | None = None,
          notes: Iterable[str] = ()) -> Check:
    return Check(name, not examples if passed is None else passed, figures, examples[:50], len(examples), list(notes))


def run_checks(app: Flask, client: stripe.StripeClient, sandbox: Any, drivers: list[LifecycleDriver]) -> list[Check]:
    """Run every check (reads only); a check that raises is a FAIL naming the error, and the others still run."""
    session = db.session
    currency = app.config["PLATFORM_CURRENCY"]
    steps: list[tuple[str, Callable[[], Check | list[Check]]]] = [
        ("every Stripe event archived", lambda: archive_complete(session, sandbox)),
        ("every archived event processed", lambda: archive_settled(session)),
        ("verify", lambda: verify_finds_nothing(app, session)),
        ("no Unclassified rows", lambda: no_unclassified(session)),
        ("forward MRR = Stripe's next monthly bill", lambda: forward_mrr_matches_stripe(session, client, drivers)),
        ("Σ forward MRR = Σ latest committed = Σ deltas = trend end", lambda: mrr_figures_agree(session, currency)),
        ("revenue tile = chart end = Σ LTV = Invoices total", lambda: revenue_figures_agree(session, currency)),
    ]
    checks: list[Check] = []
    for name, step in steps:
        try:
            result = step()
        except Exception as error:  # noqa: BLE001 - reported as this check's failure, with the traceback's end
            session.rollback()
            trace = traceback.format_exception(error)[-3:]
            checks.append(Check(name, False, f"raised {type(error).__name__}: {error}"[:500],
                                ["".join(trace).strip()[-1500:]], 1))
            continue
        checks.extend(result if isinstance(result, list) else [result])
    session.rollback()
    return checks


def archive_complete(session: Any, sandbox: Any) -> Check:
    generated = {event["id"]: event for event in sandbox.events.events}
    archived = set(session.scalars(select(StripeEvent.id)))
    missing = [f"{event_id} {generated[event_id]['type']} (created {generated[event_id]['created']})"
               for event_id in generated if event_id not in archived]
    return check("every Stripe event archived", f"{len(archived & set(generated))} of {len(generated)}", missing)


def archive_settled(session: Any) -> Check:
    """Every archived event was handled: none left pending or failed, none of a customer's ignored."""
    state = StripeEventState
    statuses = dict(session.execute(select(state.status, func.count()).group_by(state.status)).all())
    rows = session.execute(
        select(StripeEvent.stripe_customer_id, StripeEvent.id, StripeEvent.type, state.status, state.error)
        .join(state, state.stripe_event_id == StripeEvent.id)
        .where((state.status.in_(("pending", "failed")))
               | ((state.status == "ignored") & StripeEvent.stripe_customer_id.is_not(None)))
        .order_by(StripeEvent.stripe_customer_id, StripeEvent.stripe_created_at)).all()
    customers = {row.stripe_customer_id for row in rows}
    examples = [f"{r.stripe_customer_id} {r.id} ({r.type}): expected processed, found {r.status}"
                + (f": {(r.error or '').splitlines()[0][:300]}" if r.error else "") for r in rows]
    return check("every archived event processed", f"{statuses}; {len(rows)} unsettled events of {len(customers)} "
                 "customers", examples)


def verify_finds_nothing(app: Flask, session: Any) -> list[Check]:
    """The replay's own recomputation (`verify_books` when there is one, else `verify_ledger`) finds nothing."""
    from backoffice.billing.replay import Replayer, ReplaySettings, verify
    from backoffice.billing.replay.tasks import gateway

    settings = ReplaySettings.from_config(app.config)
    books = getattr(verify, "verify_books", None)
    if books is not None:
        found = books(session, settings, gateway())
        ledger, payments = [str(d) for d in found.ledger], [str(d) for d in found.payments]
        return [check("verify: ledger", f"{len(ledger)} difference(s)", ledger),
                check("verify: payment_transactions", f"{len(payments)} difference(s)", payments)]
    rules = Replayer(session, settings, gateway()).rules
    ledger = [str(d) for d in verify.verify_ledger(session, rules)]
    return [check("verify: ledger", f"{len(ledger)} difference(s) (verify_ledger; no verify_books yet)", ledger)]


def no_unclassified(session: Any) -> Check:
    rows = session.execute(
        select(VIEW.c.tenant_id, Subscription.stripe_customer_id, VIEW.c.stripe_event_id, StripeEvent.type,
               VIEW.c.occurred_at, VIEW.c.committed_mrr)
        .join(Subscription, Subscription.id == VIEW.c.subscription_id, isouter=True)
        .join(StripeEvent, StripeEvent.id == VIEW.c.stripe_event_id, isouter=True)
        .where(VIEW.c.event_type == "Unclassified").order_by(VIEW.c.occurred_at)).all()
    total = session.scalar(select(func.count()).select_from(VIEW))
    examples = [f"{r.tenant_id} {r.stripe_customer_id} {r.stripe_event_id} ({r.type}, {r.occurred_at:%Y-%m-%d}): "
                f"expected a classified row, found Unclassified (committed_mrr {r.committed_mrr})" for r in rows]
    by_type: dict[str, int] = {}
    for row in rows:
        by_type[row.type] = by_type.get(row.type, 0) + 1
    figures = f"{len(rows)} Unclassified of {total} effective rows" + (f" {by_type}" if by_type else "")
    return check("no Unclassified rows", figures, examples)


def forward_mrr_matches_stripe(session: Any, client: stripe.StripeClient, drivers: list[LifecycleDriver]) -> Check:
    """Each customer's stored forward MRR against the oracle's reading of Stripe's objects."""
    stored = {row.stripe_customer_id: row for row in session.execute(
        select(Subscription.stripe_customer_id, Subscription.tenant_id, Subscription.forward_mrr, Subscription.status,
               Subscription.plan, Subscription.current_price_currency)
        .where(Subscription.stripe_customer_id.is_not(None)))}
    oracle = StripeOracle(client)
    examples, compared = [], 0
    for driver in drivers:
        customer_id = driver.run.customer_id
        if not customer_id:
            continue
        billed = oracle.customer(customer_id, driver.subscriptions)
        row = stored.get(customer_id)
        found = row.forward_mrr if row is not None else None
        compared += 1
        if found != billed.amount and not (found is None and billed.amount == ZERO):
            examples.append(f"{driver.run.tenant_id} {customer_id}: expected {billed.amount} from Stripe "
                            f"({billed.basis}), found {found}"
                            + (f" (status {row.status}, plan {row.plan})" if row is not None else " (no subscription row)"))
    # Each customer in its own currency: a sum across currencies would add kroner to dollars.
    stored_totals: dict[str, Decimal] = {}
    for row in stored.values():
        if row.current_price_currency:
            stored_totals[row.current_price_currency] = stored_totals.get(row.current_price_currency, ZERO) + \
                row.forward_mrr
    return check("forward MRR = Stripe's next monthly bill", f"{compared} customers, {len(examples)} differ; Σ stored "
                 + ", ".join(f"{total} {billed}" for billed, total in sorted(stored_totals.items())), examples)


def billing_currencies(session: Any) -> list[str]:
    """The currencies the ledger, the subscriptions or the payments hold amounts in."""
    from backoffice.billing.models import PaymentTransaction

    return sorted(set(session.scalars(select(VIEW.c.currency).where(VIEW.c.currency.is_not(None)).distinct()))
                  | set(session.scalars(select(Subscription.current_price_currency).distinct()
                                        .where(Subscription.current_price_currency.is_not(None))))
                  | set(session.scalars(select(PaymentTransaction.currency).distinct())))


def mrr_figures_agree(session: Any, currency: str) -> Check:
    """In each billing currency: Σ forward MRR = Σ latest committed = Σ effective deltas = Σ mrr_daily; and the
    trend's last point in the reporting currency = each currency's Σ mrr_daily converted at today's rate."""
    from backoffice.fx import rates
    from backoffice.read.dashboard import mrr_trend, window

    rank = func.row_number().over(partition_by=VIEW.c.subscription_id, order_by=(
        VIEW.c.occurred_at.desc(), VIEW.c.position.desc(), VIEW.c.stripe_event_id.desc()))
    ranked = select(VIEW.c.subscription_id, VIEW.c.committed_mrr, VIEW.c.stripe_event_id, VIEW.c.event_type,
                    VIEW.c.currency, rank.label("rank")).subquery()
    latest = select(ranked).where(ranked.c.rank == 1).subquery()
    period = window(30)
    figures_of: dict[str, dict[str, Decimal]] = {}
    for billed in billing_currencies(session) or [currency]:
        figures_of[billed] = {
            "Σ forward MRR": session.scalar(select(func.coalesce(func.sum(Subscription.forward_mrr), ZERO))
                                            .where(Subscription.current_price_currency == billed)),
            "Σ latest committed": session.scalar(select(func.coalesce(func.sum(latest.c.committed_mrr), ZERO))
                                                 .where(func.coalesce(latest.c.currency, currency) == billed)),
            "Σ effective deltas": session.scalar(select(func.coalesce(func.sum(VIEW.c.amount_delta), ZERO))
                                                 .where(func.coalesce(VIEW.c.currency, currency) == billed)),
            "Σ mrr_daily": session.scalar(select(func.coalesce(func.sum(MrrDaily.delta_sum), ZERO))
                                          .where(MrrDaily.currency == billed)),
        }
    rate = rates.rates_for(session, sorted(figures_of), [period.today], currency)
    converted = sum((rates.convert(figures["Σ mrr_daily"], rate[(billed, period.today)])
                     for billed, figures in figures_of.items()), ZERO)
    trend = mrr_trend(session, currency, period).last
    apart = [billed for billed, figures in figures_of.items() if len(set(figures.values())) > 1]
    examples = []
    if apart:
        per_subscription = session.execute(
            select(Subscription.tenant_id, Subscription.stripe_customer_id, Subscription.forward_mrr,
                   latest.c.committed_mrr, latest.c.stripe_event_id, latest.c.event_type)
            .join(latest, latest.c.subscription_id == Subscription.id, isouter=True)
            .where(func.coalesce(latest.c.committed_mrr, ZERO) != Subscription.forward_mrr)
            .order_by(Subscription.tenant_id)).all()
        examples = [f"{r.tenant_id} {r.stripe_customer_id}: forward_mrr {r.forward_mrr}, latest committed_mrr "
                    f"{r.committed_mrr} ({r.event_type} {r.stripe_event_id})" for r in per_subscription]
        if not examples:
            examples = [f"{billed}: " + ", ".join(f"{name} {value}" for name, value in figures_of[billed].items())
                        for billed in apart]
    if trend != converted:
        examples.append(f"trend's last point {trend} {currency} ≠ Σ mrr_daily converted at today's rates "
                        f"{converted} {currency}")
    shown = "; ".join(f"{billed}: " + ", ".join(f"{name} {value}" for name, value in figures.items())
                      for billed, figures in figures_of.items())
    return check("Σ forward MRR = Σ latest committed = Σ deltas = trend end",
                 f"{shown}; trend's last point {trend} {currency} = converted {converted}", examples,
                 passed=not apart and trend == converted)


def invoices_total(session: Any, currency: str, tenant_id: str | None = None) -> tuple[Decimal, Decimal | None]:
    """The Invoices page's total: (the listed tenants', every tenant's when the page says it, else None)."""
    from backoffice.billing.lists.invoices import InvoiceFilter, invoice_totals

    value = invoice_totals(session, InvoiceFilter(tenant_id=tenant_id)).get(currency)
    if value is None:
        return ZERO, ZERO
    if isinstance(value, Decimal):
        return value, None
    return value.listed, value.amount


def revenue_figures_agree(session: Any, currency: str) -> Check:
    """The revenue tile = the chart's end in the reporting currency; in each billing currency, Σ lifetime value =
    Σ revenue movements = the Invoices total over the same tenants."""
    from backoffice.read.dashboard import revenue_trend, total_revenue, window

    tile = total_revenue(session, currency)
    chart = revenue_trend(session, currency, window(30)).last
    parts = [_revenue_in(session, billed) for billed in billing_currencies(session) or [currency]]
    examples = ([f"chart end {chart} ≠ tile {tile}"] if chart != tile else []) + [
        example for part in parts for example in part.counter_examples]
    return check("revenue tile = chart end; Σ LTV = Invoices total (like with like) in each currency",
                 f"revenue tile {tile} {currency}, chart end {chart}; " + "; ".join(part.figures for part in parts),
                 examples, notes=[note for part in parts for note in part.notes])


def _revenue_in(session: Any, currency: str) -> Check:
    """One billing currency's revenue: Σ lifetime value = Σ revenue movements = the Invoices total."""
    from backoffice.billing.ledger.revenue import lifetime_values
    from backoffice.billing.ledger.revenue import total_revenue as ledger_revenue

    ltv = {tenant: amount or ZERO for tenant, amount in lifetime_values(session, currency).items()}
    ltv_total = sum(ltv.values(), ZERO)
    movements = ledger_revenue(session, currency)
    listed, everyone = invoices_total(session, currency)
    deleted = set(session.scalars(select(Tenant.id).where(Tenant.deleted_at.is_not(None))))
    deleted_ltv = sum((amount for tenant, amount in ltv.items() if tenant in deleted), ZERO)
    examples = [f"{currency}: Σ revenue movements {movements} ≠ Σ lifetime value {ltv_total}"] \
        if movements != ltv_total else []
    # Like with like: the listed rows against the live tenants' LTV; every tenant's (when shown) against Σ LTV.
    pairs = [("Invoices total (listed accounts)", listed, "Σ lifetime value of live tenants", ltv_total - deleted_ltv)]
    if everyone is not None:
        pairs.append(("Invoices total with deleted accounts", everyone, "Σ lifetime value", ltv_total))
    for name, value, other, expected in pairs:
        if value != expected:
            examples.append(f"{currency}: {name} {value} ≠ {other} {expected}")
    if any(value != expected for _, value, _, expected in pairs):
        for tenant, amount in sorted(ltv.items()):
            shown, shown_all = invoices_total(session, currency, tenant)
            if (shown_all if shown_all is not None else shown) != amount and not (tenant in deleted and not shown):
                examples.append(f"{tenant}{' (deleted)' if tenant in deleted else ''}: Invoices total "
                                f"{shown_all if shown_all is not None else shown} {currency}, lifetime value {amount}")
    notes = [f"{currency}: the Invoices page lists {listed} and Σ lifetime value is {ltv_total}: the {len(deleted)} "
             f"soft-deleted tenants hold {deleted_ltv}" + (f"; the page shows every tenant's {everyone} too"
                                                          if everyone is not None else "; the page does not say so")
             ] if ltv_total != listed else []
    return check(currency, f"{currency}: Σ lifetime value {ltv_total}, Σ revenue movements {movements}, Invoices "
                 f"total {listed} listed" + (f" / {everyone} with deleted" if everyone is not None else "")
                 + f" (deleted tenants' LTV {deleted_ltv})", examples, notes=notes)

"""Pricing (DESIGN §4.1, §4.5, §4.6): plans, monthly amounts and forward MRR of an as-of subscription state.

One `Pricing` (the catalog and the coupon lookup) and one function of a state, `Pricing.subscription`, serve
the ledger rules, the projection, reconcile, disaster recovery and verify alike, so none prices differently.
What it cannot know (a price, discount or coupon that is neither at hand nor fetchable) raises
`MissingKnowledge`: nothing is priced rather than priced wrong. Plain Python over payload dicts.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from backoffice.billing.ledger.resolvers import Item, Resolver, ref_id
from backoffice.money import cents, to_major
from backoffice.stripe_gateway.results import PriceInfo

ZERO = Decimal("0.00")
# Stripe's own monthly normalization: a week is 52/12 of a month.
MONTHS_PER_INTERVAL = {"day": Decimal(12) / Decimal(365), "week": Decimal(12) / Decimal(52),
                       "month": Decimal(1), "year": Decimal(12)}
ENDED_STATUSES = frozenset({"canceled", "incomplete_expired"})
SCHEDULE_ACTIVE = frozenset({"not_started", "active"})


class MissingKnowledge(LookupError):
    """A price, discount or coupon neither known nor fetchable: the replay waits rather than write a wrong row."""


def fetch_once(kind: str, key: str, known: dict[str, Any], missing: set[str],
               fetch: Callable[[str], Any] | None) -> Any | None:
    """What `known` lacks, asked of `fetch` (Stripe) once: remembered when found, its absence remembered when Stripe
    has none; MissingKnowledge when there is nobody to ask (the fetch itself raises it when Stripe cannot say)."""
    if fetch is None:
        raise MissingKnowledge(f"{kind} {key}")
    found = fetch(key)
    if found is None:
        missing.add(key)
    else:
        known[key] = found
    return found


class Catalog:
    """Prices by id, with the plan order; a price it lacks is asked of `fetch` (the gateway), once.

    `fetch` returns the price, or None when Stripe has no such price; it raises MissingKnowledge when it cannot
    say (Stripe unreachable). Without `fetch`, a price the catalog lacks is missing knowledge.
    """

    def __init__(self, prices: Iterable[PriceInfo], plan_order: Iterable[str],
                 fetch: Callable[[str], PriceInfo | None] | None = None):
        self.prices = {price.id: price for price in prices}
        self.plan_order = tuple(plan_order)
        self.fetch = fetch
        self.fetched: list[PriceInfo] = []
        self._missing: set[str] = set()

    def price(self, price_id: str | None) -> PriceInfo | None:
        """The price, or None when it has no id or Stripe has no such price; MissingKnowledge when unknowable."""
        if not price_id:
            return None
        entry = self.prices.get(price_id)
        if entry is not None or price_id in self._missing:
            return entry
        entry = fetch_once("price", price_id, self.prices, self._missing, self.fetch)
        if entry is not None:
            self.fetched.append(entry)
        return entry

    def rank(self, plan: str | None) -> int:
        """Position of a plan in PLAN_ORDER (unknown plans rank after every known one)."""
        if plan is None:
            return -1
        return self.plan_order.index(plan) if plan in self.plan_order else len(self.plan_order)


class UnknownPlan(ValueError):
    """Items whose prices name no plan: the event is Unclassified (DESIGN §4.1)."""


def plan_of(items: list[Item], catalog: Catalog) -> str | None:
    """The plan of a set of items: the first price that names one; None for no items.

    Raises UnknownPlan when there are items and none of their prices names a plan.
    """
    if not items:
        return None
    for item in items:
        if item.plan:
            return item.plan
        entry = catalog.price(item.price_id)
        if entry is not None and entry.plan:
            return entry.plan
    raise UnknownPlan(f"no plan in metadata of price(s) {', '.join(str(i.price_id) for i in items)}")


@dataclass(frozen=True)
class Coupon:
    percent_off: Decimal | None
    amount_off: Decimal | None  # major units, per invoice


def monthly_amount(items: list[Item], catalog: Catalog, *, tax_rate: Decimal | None = None,
                   coupons: Iterable[Coupon] = ()) -> Decimal:
    """Σ unit amount × quantity per month, ex-VAT, less forever coupons; rounded half-even to cents once."""
    total = Decimal(0)
    months = Decimal(1)
    for item in items:
        # The payload's expanded price is enough; the catalog is asked only for what it leaves out.
        entry = None if item.unit_amount is not None and item.interval else catalog.price(item.price_id)
        currency = item.currency or (entry.currency if entry else None)
        unit = to_major(item.unit_amount, currency) if item.unit_amount is not None else (entry.unit_amount if entry else None)
        if unit is None:
            continue  # tiered, or a price Stripe does not have: nothing billed per unit
        interval = item.interval or (entry.interval if entry else None) or "month"
        count = item.interval_count or (entry.interval_count if entry else None) or 1
        months = MONTHS_PER_INTERVAL.get(interval, Decimal(1)) * count
        monthly = unit * item.quantity / months
        behavior = item.tax_behavior or (entry.tax_behavior if entry else None)
        if behavior == "inclusive" and tax_rate:
            monthly = monthly / (1 + tax_rate)
        total += monthly
    for coupon in coupons:
        if coupon.percent_off:
            total = total * (1 - coupon.percent_off / 100)
        if coupon.amount_off:
            total = total - coupon.amount_off / months
    return max(cents(total), ZERO)


class Lookup:
    """As-of objects by id (the latest archived `data.object` of each), for references payloads leave unexpanded."""

    def __init__(self, objects: Mapping[str, dict[str, Any]] | None = None,
                 fallback: Mapping[str, dict[str, Any]] | None = None,
                 fetch_coupon: Callable[[str], dict[str, Any] | None] | None = None):
        self.objects: dict[str, dict[str, Any]] = dict(objects or {})
        # The archive's latest version of each object: for a reference whose event sorts later in the same
        # second (a discount announced after the subscription that carries it).
        self.fallback = fallback or {}
        self.fetch_coupon = fetch_coupon
        self._missing: set[str] = set()  # coupons the fetch did not find: asked once, like the catalog's prices

    def get(self, ref: Any) -> dict[str, Any] | None:
        if isinstance(ref, dict):
            return ref
        if not isinstance(ref, str):
            return None
        return self.objects.get(ref) or self.fallback.get(ref)

    def coupon(self, ref: Any) -> dict[str, Any] | None:
        """A coupon: expanded, archived, or (once per id) fetched; coupons belong to no customer's events.

        None when Stripe has no such coupon; MissingKnowledge when nobody can say (no fetch, Stripe unreachable).
        """
        found = self.get(ref)
        if found is not None or not isinstance(ref, str) or not ref or ref in self._missing:
            return found
        return fetch_once("coupon", ref, self.objects, self._missing, self.fetch_coupon)


def forever_coupons(subscription: dict[str, Any], resolver: Resolver, lookup: Lookup) -> list[Coupon]:
    """The subscription's forever coupons (once and repeating ones do not reduce MRR: Stripe's definition)."""
    coupons = []
    for ref in resolver.discount_refs(subscription):
        discount = lookup.get(ref)
        if discount is None:
            raise MissingKnowledge(f"discount {ref_id(ref)}")
        coupon = lookup.coupon(resolver.coupon_of(discount))
        if not coupon or coupon.get("duration") != "forever":
            continue
        percent = coupon.get("percent_off")
        coupons.append(Coupon(
            percent_off=Decimal(str(percent)) if percent is not None else None,
            amount_off=to_major(coupon.get("amount_off"), coupon.get("currency")),
        ))
    return coupons


def schedule_target_items(schedule: dict[str, Any] | None, resolver: Resolver) -> list[Item] | None:
    """The last phase's items of a schedule still in force, or None (no schedule, ended, or one phase)."""
    if not schedule or schedule.get("status") not in SCHEDULE_ACTIVE:
        return None
    phases = [phase for phase in schedule.get("phases") or [] if isinstance(phase, dict)]
    if len(phases) < 2:
        return None
    return resolver.phase_items(phases[-1])


def items_amount(subscription: dict[str, Any], items: list[Item], catalog: Catalog, resolver: Resolver,
                 lookup: Lookup, tax_rate: Decimal | None) -> Decimal:
    return monthly_amount(items, catalog, tax_rate=tax_rate,
                          coupons=forever_coupons(subscription, resolver, lookup))


def forward_mrr(subscription: dict[str, Any] | None, schedule: dict[str, Any] | None, catalog: Catalog,
                resolver: Resolver, lookup: Lookup, tax_rate: Decimal | None = None,
                current: list[Item] | None = None) -> Decimal:
    """Forward MRR of a subscription state (DESIGN §4.5).

    0 when there is none, it has ended or it cancels at period end; else the monthly amount of the
    schedule's last phase while the schedule is in force and that phase's prices differ from the current
    ones; else the monthly amount of the current items. `current`: the subscription's items, when the
    caller has read them already.
    """
    if not subscription or subscription.get("status") in ENDED_STATUSES or subscription.get("cancel_at_period_end"):
        return ZERO
    if current is None:
        current = resolver.subscription_items(subscription)
    target = schedule_target_items(schedule, resolver) if _schedule_of(subscription, schedule) else None
    if target and {i.price_id for i in target} != {i.price_id for i in current}:
        return items_amount(subscription, target, catalog, resolver, lookup, tax_rate)
    return items_amount(subscription, current, catalog, resolver, lookup, tax_rate)


def _schedule_of(subscription: dict[str, Any], schedule: dict[str, Any] | None) -> bool:
    """Tell whether the schedule governs this subscription (a released one no longer does)."""
    return bool(schedule) and ref_id(schedule.get("subscription")) in (None, subscription.get("id"))


# VAT rates are whole or tenth percents (25, 25.5, 7.7): rounding to a tenth of a percent undoes the cent
# rounding of a small invoice's tax, which would otherwise move a tax-inclusive price by a cent.
RATE_STEP = Decimal("0.001")


def invoice_tax_rate(invoice: dict[str, Any] | None) -> Decimal | None:
    """The VAT rate charged on an invoice (total tax ÷ total ex-tax), for tax-inclusive prices."""
    if not invoice:
        return None
    excluding = invoice.get("total_excluding_tax")
    total = invoice.get("total")
    if not isinstance(excluding, int) or not isinstance(total, int) or excluding <= 0:
        return None
    return (Decimal(total - excluding) / Decimal(excluding)).quantize(RATE_STEP, ROUND_HALF_EVEN)


def customer_tax_rate(objects: Iterable[dict[str, Any]]) -> Decimal | None:
    """The VAT rate charged on the customer's invoices, read off the largest one (the least rounded), so that every
    row and the projection of one customer divide a tax-inclusive price by the same rate."""
    invoices = [o for o in objects if o.get("object") == "invoice" and invoice_tax_rate(o) is not None]
    largest = max(invoices, key=lambda o: (o["total_excluding_tax"], o.get("created") or 0, str(o.get("id"))),
                  default=None)
    return invoice_tax_rate(largest)


@dataclass(frozen=True)
class SubscriptionAmounts:
    """What a subscription state is worth per month (DESIGN §4.1, §4.5)."""

    plan: str | None  # of the current items; None once ended, or when no price names a plan
    current: Decimal | None  # the current items' monthly amount, when there is a plan
    scheduled_plan: str | None  # the schedule's last phase, while in force and another plan
    scheduled: Decimal | None
    forward: Decimal


NOTHING = SubscriptionAmounts(None, None, None, None, ZERO)


class Pricing:
    """The lookups every price computation uses: the catalog of prices and the coupons, each fetched once."""

    def __init__(self, catalog: Catalog, fetch_coupon: Callable[[str], dict[str, Any] | None] | None = None):
        self.catalog = catalog
        self.fetch_coupon = fetch_coupon

    def lookup(self, objects: Mapping[str, dict[str, Any]] | None = None,
               fallback: Mapping[str, dict[str, Any]] | None = None) -> Lookup:
        """As-of objects for a walk over a customer's events, asking coupons of this pricing's fetch."""
        return Lookup(objects, fallback, self.fetch_coupon)

    def plan(self, items: list[Item]) -> str | None:
        """The plan of items; None when no price names one (the rules call that Unclassified)."""
        try:
            return plan_of(items, self.catalog)
        except UnknownPlan:
            return None

    def items(self, items: list[Item], tax_rate: Decimal | None = None) -> Decimal:
        """The monthly amount of items with no discount (an invoice's lines, for a baseline)."""
        return monthly_amount(items, self.catalog, tax_rate=tax_rate)

    def subscription(self, subscription: dict[str, Any] | None, schedule: dict[str, Any] | None,
                     resolver: Resolver, lookup: Lookup, tax_rate: Decimal | None = None) -> SubscriptionAmounts:
        """Plan, current and scheduled monthly amounts and forward MRR of one as-of state."""
        if not subscription or subscription.get("status") in ENDED_STATUSES:
            return NOTHING
        current_items = resolver.subscription_items(subscription)
        plan = self.plan(current_items)
        current = (items_amount(subscription, current_items, self.catalog, resolver, lookup, tax_rate)
                   if plan else None)
        target = schedule_target_items(schedule, resolver) if _schedule_of(subscription, schedule) else None
        target_plan = self.plan(target) if target else None
        scheduled_plan = target_plan if target_plan and target_plan != plan else None
        scheduled = (items_amount(subscription, target, self.catalog, resolver, lookup, tax_rate)
                     if scheduled_plan and target else None)
        return SubscriptionAmounts(plan, current, scheduled_plan, scheduled,
                                   forward_mrr(subscription, schedule, self.catalog, resolver, lookup, tax_rate,
                                               current_items))

"""What Stripe's own objects say a customer will be billed per month next, read through the SDK.

An oracle for `flask billing prove`, written apart from Backoffice's pricing on purpose (DESIGN §4.1 and
§4.5 restated from Stripe's objects): Σ items unit_amount × quantity per month (a year ÷ 12,
`interval_count` honoured, a week × 52 ÷ 12), ex-VAT (a tax-inclusive price ÷ (1 + the rate on the
customer's invoices)), less forever coupons (percent and amount off; once and repeating ones do not lower
MRR); 0 when canceled, incomplete_expired or canceling at period end; the last phase of an active schedule
when its items differ from the subscription's. Exact fractions throughout, rounded half-even to cents once.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import stripe

ENDED = {"canceled", "incomplete_expired"}
PER_MONTH = {"day": Fraction(365, 12), "week": Fraction(52, 12), "month": Fraction(1), "year": Fraction(1, 12)}


@dataclass(frozen=True)
class Billed:
    """A customer's monthly amount as Stripe's objects have it, and how it was found (for counter-examples)."""

    amount: Decimal
    basis: str


def per_month(recurring: Any) -> Fraction:
    """How many of a price's billing intervals make a month."""
    return PER_MONTH[recurring["interval"]] / recurring["interval_count"]


def to_cents(minor: Fraction) -> Decimal:
    """Minor units (exact) → major units, rounded half-even once (Fraction rounds ties to even)."""
    return Decimal(round(minor)).scaleb(-2).quantize(Decimal("0.01"))


class StripeOracle:
    """Reads subscriptions, schedules, discounts, coupons, prices, invoices and tax rates through the SDK."""

    def __init__(self, client: stripe.StripeClient):
        self.client = client
        self._prices: dict[str, Any] = {}
        self._coupons: dict[str, Any] = {}
        self._rates: dict[str, Fraction] = {}

    def price(self, price_id: str) -> Any:
        if price_id not in self._prices:
            self._prices[price_id] = self.client.v1.prices.retrieve(price_id)
        return self._prices[price_id]

    def coupon(self, coupon_id: str) -> Any:
        if coupon_id not in self._coupons:
            self._coupons[coupon_id] = self.client.v1.coupons.retrieve(coupon_id)
        return self._coupons[coupon_id]

    def vat_rate(self, customer_id: str) -> Fraction:
        """The VAT rate charged on the customer's invoices (percent; 0 when none carries tax)."""
        for listed in self.client.v1.invoices.list(params={"customer": customer_id, "limit": 100}).auto_paging_iter():
            for tax in listed.to_dict().get("total_taxes") or []:
                if tax.get("amount") or tax.get("taxable_amount"):
                    rate_id = tax["tax_rate_details"]["tax_rate"]
                    if rate_id not in self._rates:
                        rate = self.client.v1.tax_rates.retrieve(rate_id)
                        self._rates[rate_id] = Fraction(str(rate.percentage))
                    return self._rates[rate_id]
        return Fraction(0)

    def customer(self, customer_id: str, subscription_ids: list[str]) -> Billed:
        """Σ over the customer's subscriptions (ended ones add 0)."""
        total, bases = Fraction(0), []
        rate: Fraction | None = None
        for subscription_id in subscription_ids:
            subscription = self.client.v1.subscriptions.retrieve(
                subscription_id, params={"expand": ["discounts", "schedule"]})
            if rate is None and _inclusive(subscription, self):
                rate = self.vat_rate(customer_id)
            amount, basis = self.subscription(subscription, rate or Fraction(0))
            total += amount
            bases.append(f"{subscription_id}: {basis}")
        return Billed(to_cents(total), "; ".join(bases))

    def subscription(self, subscription: Any, vat: Fraction) -> tuple[Fraction, str]:
        """One subscription's monthly amount in minor units (exact), and a line saying how."""
        if subscription.status in ENDED or subscription.cancel_at_period_end:
            return Fraction(0), f"0 ({subscription.status}, cancel_at_period_end={subscription.cancel_at_period_end})"
        items = [(item.price, item.quantity) for item in subscription["items"].data]
        source = "items"
        schedule = subscription.schedule
        if schedule is not None and not isinstance(schedule, str) and schedule.status == "active":
            last = [(self.price(_id(entry.price)), entry.quantity) for entry in schedule.phases[-1]["items"]]
            if [(p.id, q) for p, q in last] != [(p.id, q) for p, q in items]:
                items, source = last, f"last phase of {schedule.id}"
        gross = sum((Fraction(price.unit_amount) * quantity * per_month(price.recurring) for price, quantity in items),
                    Fraction(0))
        interval = per_month(items[0][0].recurring) if items else Fraction(1)
        coupons = []
        for discount in subscription.discounts or []:
            coupon = self.coupon(_id(discount["source"]["coupon"]))
            if coupon.duration != "forever":
                continue
            if coupon.percent_off is not None:
                gross *= 1 - Fraction(str(coupon.percent_off)) / 100
                coupons.append(f"-{coupon.percent_off}% forever")
            else:
                gross = max(Fraction(0), gross - coupon.amount_off * interval)
                coupons.append(f"-{coupon.amount_off} forever")
        inclusive = bool(items) and all(price.tax_behavior == "inclusive" for price, _ in items)
        net = gross / (1 + vat / 100) if inclusive else gross
        described = " + ".join(f"{price.unit_amount}×{quantity}/{price.recurring.interval_count}"
                               f"{price.recurring.interval}" for price, quantity in items)
        tax = f" incl. VAT {float(vat):g}%" if inclusive else ""
        return net, f"{source} [{described}]{tax} {' '.join(coupons)}".rstrip()


def _inclusive(subscription: Any, oracle: StripeOracle) -> bool:
    prices = [item.price for item in subscription["items"].data]
    schedule = subscription.schedule
    if schedule is not None and not isinstance(schedule, str):
        prices += [oracle.price(_id(entry.price)) for phase in schedule.phases for entry in phase["items"]]
    return any(price.tax_behavior == "inclusive" for price in prices)


def _id(value: Any) -> str:
    return value if isinstance(value, str) else value.id

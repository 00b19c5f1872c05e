"""Invoices, their lines (discounts, VAT), the customer's credit balance, and payment by card.

An invoice goes draft → open when finalized (numbered, the customer's balance applied) → paid. A declined
charge leaves it open with a growing `attempt_count` until the clock retries it or `pay` succeeds; `void` and
`mark_uncollectible` end it otherwise. Every attempt is a charge; the invoice's payment is one
`invoice_payment` (Stripe's default payment for the invoice), which turns `paid` with the successful charge.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from backoffice.stripe_sandbox.api import Lookup, Router, includable, paginate
from backoffice.stripe_sandbox.documents import DOCUMENTS_HOST
from backoffice.stripe_sandbox.errors import (
    CardDeclined,
    InvalidRequest,
    parameter_invalid,
    parameter_missing,
    parameter_unknown,
)
from backoffice.stripe_sandbox.params import Params
from backoffice.stripe_sandbox.resources.payment_methods import declines
from backoffice.stripe_sandbox.sandbox import Sandbox

router = Router()

Obj = dict[str, Any]
DAY = 24 * 3600
# Days between a declined attempt and the next, like a custom retry schedule in Stripe's dashboard.
# A sandbox's settings may override it with a `payment_retry_days` sequence.
DEFAULT_RETRY_DAYS = (3, 5, 7)
CHARGE_DESCRIPTIONS = {"subscription_create": "Subscription creation", "subscription_cycle": "Subscription update",
                       "subscription_update": "Subscription update"}
PAYABLE = {"open", "uncollectible"}


# --- lines: what to bill, discounts and tax ------------------------------------------------------------------
@dataclass(frozen=True)
class LineSpec:
    """One line to bill, before discounts and tax (a subscription item's period, or a proration)."""

    price: Obj
    quantity: int
    amount: int
    period: tuple[int, int]
    description: str
    subscription_item: str | None = None
    proration: bool = False


@dataclass(frozen=True)
class TaxRule:
    """The VAT a customer pays: the rate configured for the country of their address."""

    country: str
    percent: Decimal


def tax_rule(sb: Sandbox, customer: Obj) -> TaxRule | None:
    """Return the customer's VAT rule; none for exempt customers or countries without a configured rate."""
    if customer.get("tax_exempt") in ("exempt", "reverse"):
        return None
    country = ((customer.get("address") or {}).get("country") or "").upper()
    percent = sb.settings.tax_rates.get(country)
    return TaxRule(country, percent) if percent is not None else None


def round_minor(value: Decimal) -> int:
    """Round to whole minor units, half away from zero, as Stripe rounds tax and prorations."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def tax_in(amount: int, percent: Decimal, inclusive: bool) -> int:
    """Return the tax on a line amount (already contained in it when the price is tax-inclusive)."""
    if inclusive:
        return round_minor(Decimal(amount) * percent / (100 + percent))
    return round_minor(Decimal(amount) * percent / 100)


def line_taxes(sb: Sandbox, rule: TaxRule | None, price: Obj, amount: int) -> list[Obj]:
    """Return a line's `taxes` for its amount after discounts (a price without tax behaviour counts as exclusive)."""
    if rule is None:
        return []
    inclusive = price["tax_behavior"] == "inclusive"
    tax = tax_in(amount, rule.percent, inclusive)
    return [{
        "amount": tax,
        "tax_behavior": "inclusive" if inclusive else "exclusive",
        "tax_rate_details": {"tax_rate": tax_rate_for(sb, rule, inclusive)["id"]},
        "taxability_reason": "standard_rated",
        "taxable_amount": amount - tax if inclusive else amount,
        "type": "tax_rate_details",
    }]


def tax_rate_for(sb: Sandbox, rule: TaxRule, inclusive: bool) -> Obj:
    """Return the tax_rate object standing for a configured VAT rate, made on first use (it is configuration)."""
    percentage = float(rule.percent)
    for rate in sb.store.all("tax_rate"):
        if (rate["country"], rate["percentage"], rate["inclusive"]) == (rule.country, percentage, inclusive):
            return rate
    return sb.store.add({
        "id": sb.new_id("txr"), "object": "tax_rate", "active": True, "country": rule.country,
        "created": sb.now(), "description": f"VAT {rule.country}", "display_name": "VAT",
        "effective_percentage": percentage, "flat_amount": None, "inclusive": inclusive,
        "jurisdiction": rule.country, "jurisdiction_level": "country", "livemode": False, "metadata": {},
        "percentage": percentage, "rate_type": "percentage", "state": None, "tax_type": "vat",
    })


def discount_amounts(sb: Sandbox, amounts: Sequence[int], discounts: Iterable[Obj]) -> list[list[Obj]]:
    """Split each discount over the lines (`discount_amounts` per line), one discount after the other."""
    remaining = list(amounts)
    per_line: list[list[Obj]] = [[] for _ in amounts]
    for discount in discounts:
        coupon = sb.store.get("coupon", discount["source"]["coupon"])
        for index, share in enumerate(coupon_shares(coupon, remaining)):
            if share:
                per_line[index].append({"amount": share, "discount": discount["id"]})
                remaining[index] -= share
    return per_line


def coupon_shares(coupon: Obj, amounts: Sequence[int]) -> list[int]:
    """Return what a coupon takes off each amount: a percentage of each, or a fixed sum spread over them."""
    if coupon["percent_off"] is not None:
        percent = Decimal(str(coupon["percent_off"]))
        return [round_minor(Decimal(amount) * percent / 100) for amount in amounts]
    return spread(coupon["amount_off"], amounts)


def spread(total: int, amounts: Sequence[int]) -> list[int]:
    """Spread `total` over the positive amounts in proportion, largest remainders first, never above their sum."""
    weights = [max(amount, 0) for amount in amounts]
    base = sum(weights)
    if base == 0:
        return [0] * len(amounts)
    total = min(total, base)
    shares = [total * weight // base for weight in weights]
    by_remainder = sorted(range(len(weights)), key=lambda i: total * weights[i] % base, reverse=True)
    for index in by_remainder[:total - sum(shares)]:
        shares[index] += 1
    return shares


def priced_lines(sb: Sandbox, invoice_id: str, customer: Obj, specs: Sequence[LineSpec],
                 discounts: Sequence[Obj], subscription_id: str | None, currency: str) -> list[Obj]:
    """Turn line specs into basil `line_item`s with their discounts and taxes."""
    rule = tax_rule(sb, customer)
    shares = discount_amounts(sb, [spec.amount for spec in specs], discounts)
    lines = []
    for spec, line_discounts in zip(specs, shares, strict=True):
        discounted = spec.amount - sum(share["amount"] for share in line_discounts)
        lines.append({
            "id": sb.new_id("il"),
            "object": "line_item",
            "amount": spec.amount,
            "currency": currency,
            "description": spec.description,
            "discount_amounts": line_discounts,
            "discountable": True,
            "discounts": [share["discount"] for share in line_discounts],
            "invoice": invoice_id,
            "livemode": False,
            "metadata": {},
            "parent": _line_parent(spec, subscription_id),
            "period": {"end": spec.period[1], "start": spec.period[0]},
            "pretax_credit_amounts": [],
            "pricing": {"price_details": {"price": spec.price["id"], "product": spec.price["product"]},
                        "type": "price_details", "unit_amount_decimal": spec.price["unit_amount_decimal"]},
            "quantity": spec.quantity,
            "quantity_decimal": str(spec.quantity),
            "subscription": subscription_id,
            "subtotal": spec.amount,
            "taxes": line_taxes(sb, rule, spec.price, discounted),
        })
    return lines


def _line_parent(spec: LineSpec, subscription_id: str | None) -> Obj | None:
    if subscription_id is None:
        return None
    return {"invoice_item_details": None,
            "subscription_item_details": {"invoice_item": None, "proration": spec.proration,
                                          "proration_details": {"credited_items": None},
                                          "subscription": subscription_id,
                                          "subscription_item": spec.subscription_item},
            "type": "subscription_item_details"}


# --- totals, shared with credit notes ------------------------------------------------------------------------
@dataclass(frozen=True)
class Totals:
    """The sums of a document's lines: Stripe's subtotal, discounts, taxes and total."""

    subtotal: int
    subtotal_excluding_tax: int
    discount_amounts: list[Obj]
    discount: int
    taxes: list[Obj]
    total: int
    total_excluding_tax: int


def totals_of(lines: Iterable[Obj]) -> Totals:
    """Add up lines that carry `amount`, `discount_amounts` and `taxes` (invoice or credit note lines)."""
    lines = list(lines)
    subtotal = sum(line["amount"] for line in lines)
    discounts = _merge(((d["discount"],), d["amount"], 0) for line in lines for d in line["discount_amounts"])
    taxes = _merge(((t["tax_rate_details"]["tax_rate"], t["tax_behavior"]), t["amount"], t["taxable_amount"])
                   for line in lines for t in line["taxes"])
    discount = sum(amount for amount, _ in discounts.values())
    inclusive = sum(amount for (_, behavior), (amount, _) in taxes.items() if behavior == "inclusive")
    exclusive = sum(amount for (_, behavior), (amount, _) in taxes.items() if behavior == "exclusive")
    total = subtotal - discount + exclusive
    return Totals(
        subtotal=subtotal,
        subtotal_excluding_tax=subtotal - inclusive,
        discount_amounts=[{"amount": amount, "discount": key[0]} for key, (amount, _) in discounts.items()],
        discount=discount,
        taxes=[{"amount": amount, "tax_behavior": behavior, "tax_rate_details": {"tax_rate": rate},
                "taxability_reason": "standard_rated", "taxable_amount": taxable, "type": "tax_rate_details"}
               for (rate, behavior), (amount, taxable) in taxes.items()],
        total=total,
        total_excluding_tax=total - exclusive - inclusive,
    )


def _merge(entries: Iterable[tuple[tuple[str, ...], int, int]]) -> dict[tuple[str, ...], tuple[int, int]]:
    """Sum (amount, base) pairs by key, keeping first-seen order."""
    merged: dict[tuple[str, ...], tuple[int, int]] = {}
    for key, amount, base in entries:
        old_amount, old_base = merged.get(key, (0, 0))
        merged[key] = (old_amount + amount, old_base + base)
    return merged


# --- the invoice ---------------------------------------------------------------------------------------------
def draft_invoice(sb: Sandbox, customer: Obj, specs: Sequence[LineSpec], *, billing_reason: str,
                  subscription: Obj | None = None, discounts: Sequence[Obj] = (),
                  period: tuple[int, int] | None = None) -> Obj:
    """Store a draft invoice for the lines; the caller announces it (`announce_and_finalize`)."""
    invoice_id = sb.new_id("in")
    currency = subscription["currency"] if subscription else sb.settings.currency
    lines = priced_lines(sb, invoice_id, customer, specs, discounts, subscription["id"] if subscription else None,
                         currency)
    now = sb.now()
    start, end = period or (now, now)
    invoice = {
        "id": invoice_id,
        "object": "invoice",
        "account_country": getattr(sb.settings, "account_country", None),
        "account_name": getattr(sb.settings, "account_name", None),
        "account_tax_ids": None,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": True,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None, "provider": None,
                          "status": None},
        "automatically_finalizes_at": None,
        "billing_reason": billing_reason,
        "collection_method": "charge_automatically",
        "created": now,
        "currency": currency,
        "custom_fields": None,
        "customer": customer["id"],
        "customer_account": None,
        "customer_address": copy.deepcopy(customer["address"]),
        "customer_email": customer["email"],
        "customer_name": customer["name"],
        "customer_phone": customer["phone"],
        "customer_shipping": None,
        "customer_tax_exempt": customer["tax_exempt"],
        "customer_tax_ids": _customer_tax_ids(sb, customer),
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": sorted({share["discount"] for line in lines for share in line["discount_amounts"]}),
        "due_date": None,
        "effective_at": None,
        "ending_balance": None,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {"object": "list", "data": lines, "has_more": False, "url": f"/v1/invoices/{invoice_id}/lines"},
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": _invoice_parent(subscription),
        "payment_settings": {"default_mandate": None, "payment_method_options": None, "payment_method_types": None},
        "period_end": end,
        "period_start": start,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {"finalized_at": None, "marked_uncollectible_at": None, "paid_at": None,
                               "voided_at": None},
        "test_clock": None,
        "total_pretax_credit_amounts": [],
        "webhooks_delivered_at": None,
    }
    _apply_totals(invoice, totals_of(lines))
    return sb.store.add(invoice)


def _apply_totals(invoice: Obj, totals: Totals) -> None:
    invoice.update({
        "subtotal": totals.subtotal,
        "subtotal_excluding_tax": totals.subtotal_excluding_tax,
        "total": totals.total,
        "total_discount_amounts": totals.discount_amounts,
        "total_excluding_tax": totals.total_excluding_tax,
        "total_taxes": totals.taxes,
        "amount_due": max(totals.total, 0),
        "amount_remaining": max(totals.total, 0),
    })


def _invoice_parent(subscription: Obj | None) -> Obj | None:
    if subscription is None:
        return None
    return {"quote_details": None,
            "subscription_details": {"metadata": dict(subscription["metadata"]), "subscription": subscription["id"]},
            "type": "subscription_details"}


def _customer_tax_ids(sb: Sandbox, customer: Obj) -> list[Obj]:
    return [{"type": t["type"], "value": t["value"]} for t in sb.store.all("tax_id")
            if t["customer"] == customer["id"] and not t.get("deleted")]


def subscription_of(sb: Sandbox, invoice: Obj) -> Obj | None:
    """Return the subscription an invoice bills, if any."""
    parent = invoice["parent"]
    if parent is None or parent["subscription_details"] is None:
        return None
    return sb.store.get("subscription", parent["subscription_details"]["subscription"])


def announce_and_finalize(sb: Sandbox, invoice: Obj) -> None:
    """Announce a drafted invoice and finalize it. Events: invoice.created, invoice.finalized[, customer.updated]."""
    sb.emit("invoice.created", invoice)
    finalize(sb, invoice)


def finalize(sb: Sandbox, invoice: Obj) -> None:
    """Number the invoice, apply the customer's balance to it and open it.

    Events: invoice.finalized, then customer.updated when the balance changed (credit used up, or a negative
    total credited to the customer).
    """
    customer = sb.store.get("customer", invoice["customer"])
    sb.snapshot(invoice)
    now = sb.now()
    invoice.update({
        "number": _next_invoice_number(sb, customer),
        "status": "open",
        "effective_at": now,
        "hosted_invoice_url": f"{DOCUMENTS_HOST}/invoices/{invoice['id']}",
        "invoice_pdf": f"{DOCUMENTS_HOST}/invoices/{invoice['id']}/pdf",
    })
    invoice["status_transitions"]["finalized_at"] = now
    # Negative balance = credit. Whatever the total does not consume stays on (or is added to) the balance.
    starting = customer["balance"]
    net = invoice["total"] + starting
    invoice.update({"starting_balance": starting, "ending_balance": min(0, net), "amount_due": max(0, net),
                    "amount_remaining": max(0, net)})
    sb.emit("invoice.finalized", invoice)
    if invoice["ending_balance"] != starting:
        adjust_balance(sb, customer, invoice["ending_balance"] - starting, "applied_to_invoice",
                       invoice=invoice["id"])


def _next_invoice_number(sb: Sandbox, customer: Obj) -> str:
    # Stripe numbers a customer's invoices without announcing it: no customer.updated for the sequence.
    sb.snapshot(customer)
    sequence = customer["next_invoice_sequence"]
    customer["next_invoice_sequence"] = sequence + 1
    return f"{customer['invoice_prefix']}-{sequence:04d}"


def adjust_balance(sb: Sandbox, customer: Obj, amount: int, kind: str, *, invoice: str | None = None,
                   credit_note: str | None = None) -> Obj:
    """Change a customer's balance (negative is credit) through a balance transaction. Event: customer.updated."""
    before = sb.snapshot(customer)
    customer["balance"] += amount
    transaction = sb.store.add({
        "id": sb.new_id("cbtxn"), "object": "customer_balance_transaction", "amount": amount,
        "checkout_session": None, "created": sb.now(), "credit_note": credit_note,
        "currency": (sb.store.find(invoice) or {}).get("currency") if invoice else sb.settings.currency,
        "customer": customer["id"], "customer_account": None, "description": None,
        "ending_balance": customer["balance"], "invoice": invoice, "livemode": False, "metadata": {}, "type": kind,
    })
    sb.emit("customer.updated", customer, before)
    return transaction


# --- payment -------------------------------------------------------------------------------------------------
def collect(sb: Sandbox, invoice: Obj, method_id: str | None = None) -> bool:
    """Collect an open invoice, by charging a card unless nothing is left to pay; return whether it is paid.

    Events when a card pays: charge.succeeded, invoice_payment.paid, invoice.paid, invoice.payment_succeeded.
    When it declines (or there is no card): [charge.failed], invoice.payment_failed, with `attempt_count` up and
    `next_payment_attempt` on the retry schedule.
    """
    if invoice["amount_remaining"] == 0:
        mark_paid(sb, invoice, 0)
        return True
    method = payment_method_for(sb, invoice, method_id)
    charge = _charge(sb, invoice, method) if method is not None else None
    sb.snapshot(invoice)
    invoice["attempt_count"] += 1
    invoice["attempted"] = True
    if charge is not None:
        _record_payment(sb, invoice, charge)
    if charge is not None and charge["status"] == "succeeded":
        mark_paid(sb, invoice, charge["amount"])
        return True
    invoice["next_payment_attempt"] = _next_attempt(sb, invoice)
    sb.emit("invoice.payment_failed", invoice)
    return False


def payment_method_for(sb: Sandbox, invoice: Obj, explicit: str | None = None) -> Obj | None:
    """Return the card to charge: the one given, else the invoice's, the subscription's, the customer's default."""
    subscription = subscription_of(sb, invoice)
    customer = sb.store.get("customer", invoice["customer"])
    candidates = [explicit, invoice["default_payment_method"],
                  subscription["default_payment_method"] if subscription else None,
                  customer["invoice_settings"]["default_payment_method"]]
    for method_id in candidates:
        method = sb.store.find(method_id) if method_id else None
        if method is not None and method.get("object") == "payment_method" and method["customer"] == customer["id"]:
            return method
    return None


def mark_paid(sb: Sandbox, invoice: Obj, amount: int, *, by_payment: bool = True) -> None:
    """Mark the invoice paid with `amount` more received. Events: invoice.paid[, invoice.payment_succeeded]."""
    sb.snapshot(invoice)
    invoice["amount_paid"] += amount
    invoice["amount_remaining"] = 0
    invoice["attempted"] = invoice["attempted"] or by_payment
    invoice["next_payment_attempt"] = None
    invoice["status"] = "paid"
    invoice["status_transitions"]["paid_at"] = sb.now()
    sb.emit("invoice.paid", invoice)
    if by_payment:
        sb.emit("invoice.payment_succeeded", invoice)


def _next_attempt(sb: Sandbox, invoice: Obj) -> int | None:
    if invoice["billing_reason"] == "subscription_create":
        return None  # an incomplete subscription's first invoice is not retried: it expires after 23 hours
    delays = tuple(getattr(sb.settings, "payment_retry_days", DEFAULT_RETRY_DAYS))
    index = invoice["attempt_count"] - 1
    return sb.now() + delays[index] * DAY if index < len(delays) else None


def _charge(sb: Sandbox, invoice: Obj, method: Obj) -> Obj:
    """Charge the card for what the invoice has left to pay. Event: charge.succeeded or charge.failed."""
    declined = declines(method)
    amount = invoice["amount_remaining"]
    card = method["card"]
    charge_id = sb.new_id("ch")
    charge = {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": 0 if declined else amount,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": copy.deepcopy(method["billing_details"]),
        "calculated_statement_descriptor": "SANDBOX",
        "captured": not declined,
        "created": sb.now(),
        "currency": invoice["currency"],
        "customer": invoice["customer"],
        "description": CHARGE_DESCRIPTIONS.get(invoice["billing_reason"]),
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": "card_declined" if declined else None,
        "failure_message": "Your card was declined." if declined else None,
        "fraud_details": {},
        "livemode": False,
        "metadata": {},
        "on_behalf_of": None,
        "outcome": _outcome(declined),
        "paid": not declined,
        "payment_intent": None,
        "payment_method": method["id"],
        "payment_method_details": {"card": _card_details(card, amount), "type": "card"},
        "receipt_email": None,
        "receipt_number": None,
        "receipt_url": f"{DOCUMENTS_HOST}/receipts/{charge_id}",
        "refunded": False,
        "refunds": {"object": "list", "data": [], "has_more": False, "url": f"/v1/charges/{charge_id}/refunds"},
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "failed" if declined else "succeeded",
        "transfer_data": None,
        "transfer_group": None,
    }
    sb.store.add(charge)
    sb.emit("charge.failed" if declined else "charge.succeeded", charge)
    return charge


def _outcome(declined: bool) -> Obj:
    common = {"advice_code": None, "network_advice_code": None, "network_decline_code": None, "risk_level": "normal"}
    if declined:
        return {**common, "network_status": "declined_by_network", "reason": "generic_decline",
                "seller_message": "The bank did not return any further details with this decline.",
                "type": "issuer_declined"}
    return {**common, "network_status": "approved_by_network", "reason": None,
            "seller_message": "Payment complete.", "type": "authorized"}


def _card_details(card: Obj, amount: int) -> Obj:
    return {
        "amount_authorized": amount, "authorization_code": None, "brand": card["brand"],
        "checks": copy.deepcopy(card["checks"]), "country": card["country"], "exp_month": card["exp_month"],
        "exp_year": card["exp_year"], "extended_authorization": {"status": "disabled"},
        "fingerprint": card["fingerprint"], "funding": card["funding"],
        "incremental_authorization": {"status": "unavailable"}, "installments": None, "last4": card["last4"],
        "mandate": None, "multicapture": {"status": "unavailable"}, "network": card["brand"],
        "network_token": {"used": False}, "network_transaction_id": None,
        "overcapture": {"maximum_amount_capturable": amount, "status": "unavailable"},
        "regulated_status": card["regulated_status"], "three_d_secure": None, "transaction_link_id": None,
        "wallet": None,
    }


def payment_id_for(invoice_id: str) -> str:
    """Return the id of an invoice's (one, default) invoice_payment.

    Deriving it from the invoice id lets `expand[]=payments` find the payment from the invoice alone.
    """
    return "inpay_" + invoice_id.removeprefix("in_")


def _record_payment(sb: Sandbox, invoice: Obj, charge: Obj) -> None:
    """Point the invoice's payment at its latest charge; it turns paid with a successful one."""
    payment = sb.store.find(payment_id_for(invoice["id"]))
    if payment is None:
        payment = sb.store.add({
            "id": payment_id_for(invoice["id"]), "object": "invoice_payment", "amount_paid": None,
            "amount_requested": invoice["amount_remaining"], "created": sb.now(), "currency": invoice["currency"],
            "invoice": invoice["id"], "is_default": True, "livemode": False,
            "payment": {"charge": charge["id"], "type": "charge"}, "status": "open",
            "status_transitions": {"canceled_at": None, "paid_at": None},
        })
    else:
        sb.snapshot(payment)
        payment["payment"]["charge"] = charge["id"]
    if charge["status"] == "succeeded":
        payment.update({"amount_paid": charge["amount"], "status": "paid"})
        payment["status_transitions"]["paid_at"] = sb.now()
        sb.emit("invoice_payment.paid", payment)


def _cancel_payment(sb: Sandbox, invoice: Obj) -> None:
    payment = sb.store.find(payment_id_for(invoice["id"]))
    if payment is not None and payment["status"] == "open":
        sb.snapshot(payment)
        payment["status"] = "canceled"
        payment["status_transitions"]["canceled_at"] = sb.now()


@includable("invoice", "payments")
def _invoice_payments(invoice: Obj, lookup: Lookup) -> Obj:
    payment = lookup(payment_id_for(invoice["id"]))
    return {"object": "list", "data": [copy.deepcopy(payment)] if payment else [], "has_more": False,
            "url": f"/v1/invoice_payments?invoice={invoice['id']}"}


# --- ending an invoice without payment -----------------------------------------------------------------------
def void(sb: Sandbox, invoice: Obj) -> None:
    """Void an open or uncollectible invoice. Event: invoice.voided."""
    _require_status(invoice, PAYABLE, "void")
    sb.snapshot(invoice)
    invoice.update({"status": "void", "next_payment_attempt": None})
    invoice["status_transitions"]["voided_at"] = sb.now()
    _cancel_payment(sb, invoice)
    sb.emit("invoice.voided", invoice)


def mark_uncollectible(sb: Sandbox, invoice: Obj) -> None:
    """Write an open invoice off as bad debt (it can still be paid). Event: invoice.marked_uncollectible."""
    _require_status(invoice, {"open"}, "mark as uncollectible")
    sb.snapshot(invoice)
    invoice.update({"status": "uncollectible", "next_payment_attempt": None})
    invoice["status_transitions"]["marked_uncollectible_at"] = sb.now()
    sb.emit("invoice.marked_uncollectible", invoice)


def _require_status(invoice: Obj, allowed: set[str], action: str) -> None:
    if invoice["status"] not in allowed:
        raise InvalidRequest(f"You can only {action} an invoice whose status is {' or '.join(sorted(allowed))}; "
                             f"this invoice is {invoice['status']}.", code="invoice_not_editable")


def _follow_subscription(sb: Sandbox, invoice: Obj) -> None:
    # Subscriptions build on invoices: importing here, not at the top, keeps the module graph acyclic.
    from backoffice.stripe_sandbox.resources.subscriptions import follow_invoice

    follow_invoice(sb, invoice)


# --- routes --------------------------------------------------------------------------------------------------
@router.add("GET", "/v1/invoices/{invoice_id}")
def retrieve_invoice(sb: Sandbox, params: Params, invoice_id: str) -> Obj:
    return sb.store.get("invoice", invoice_id)


@router.add("GET", "/v1/invoices", {"limit", "starting_after", "ending_before", "customer", "subscription", "status"})
def list_invoices(sb: Sandbox, params: Params) -> Obj:
    customer, subscription, status = params.text("customer"), params.text("subscription"), params.text("status")
    invoices = [
        invoice for invoice in sb.store.all("invoice")
        if (customer is None or invoice["customer"] == customer)
        and (status is None or invoice["status"] == status)
        and (subscription is None or _subscription_id(invoice) == subscription)
    ]
    return paginate(invoices, params, "/v1/invoices")


def _subscription_id(invoice: Obj) -> str | None:
    details = (invoice["parent"] or {}).get("subscription_details")
    return details["subscription"] if details else None


@router.add("GET", "/v1/invoices/{invoice_id}/lines", {"limit", "starting_after", "ending_before"})
def list_invoice_lines(sb: Sandbox, params: Params, invoice_id: str) -> Obj:
    invoice = sb.store.get("invoice", invoice_id)
    # Stored lines are in invoice order; paginate() expects oldest first and answers newest first.
    return paginate(invoice["lines"]["data"][::-1], params, invoice["lines"]["url"])


@router.add("POST", "/v1/invoices/{invoice_id}/pay", {"payment_method", "off_session"})
def pay(sb: Sandbox, params: Params, invoice_id: str) -> Obj:
    """Pay an open invoice now. A decline answers 402 and, like any failed request here, leaves no trace."""
    invoice = sb.store.get("invoice", invoice_id)
    if invoice["status"] == "paid":
        raise InvalidRequest("Invoice is already paid.")
    if invoice["status"] == "draft":
        finalize(sb, invoice)
    _require_status(invoice, PAYABLE, "pay")
    method_id = params.text("payment_method")
    _check_chargeable(sb, invoice, method_id)
    if not collect(sb, invoice, method_id):
        raise CardDeclined()
    _follow_subscription(sb, invoice)
    return invoice


def _check_chargeable(sb: Sandbox, invoice: Obj, method_id: str | None) -> None:
    """Refuse a card that is not the customer's, or an amount due with no card to charge."""
    if method_id:
        method = sb.store.get("payment_method", method_id, param="payment_method")
        if method["customer"] != invoice["customer"]:
            raise parameter_invalid("payment_method", f"The PaymentMethod {method_id} does not belong to the "
                                                      "invoice's customer.")
    elif invoice["amount_remaining"] and payment_method_for(sb, invoice) is None:
        raise InvalidRequest("There is no `default_payment_method` set on this Customer or Invoice. Pass a "
                             "`payment_method` to pay this invoice.")


@router.add("POST", "/v1/invoices/{invoice_id}/void")
def void_invoice(sb: Sandbox, params: Params, invoice_id: str) -> Obj:
    invoice = sb.store.get("invoice", invoice_id)
    void(sb, invoice)
    _follow_subscription(sb, invoice)
    return invoice


@router.add("POST", "/v1/invoices/{invoice_id}/mark_uncollectible")
def mark_invoice_uncollectible(sb: Sandbox, params: Params, invoice_id: str) -> Obj:
    invoice = sb.store.get("invoice", invoice_id)
    mark_uncollectible(sb, invoice)
    _follow_subscription(sb, invoice)
    return invoice


@router.add("GET", "/v1/invoice_payments/{payment_id}")
def retrieve_invoice_payment(sb: Sandbox, params: Params, payment_id: str) -> Obj:
    return sb.store.get("invoice_payment", payment_id)


@router.add("GET", "/v1/invoice_payments", {"limit", "starting_after", "ending_before", "invoice", "status", "payment"})
def list_invoice_payments(sb: Sandbox, params: Params) -> Obj:
    invoice, status = params.text("invoice"), params.text("status")
    by_payment = _payment_filter(params.hash("payment"))
    payments = [p for p in sb.store.all("invoice_payment")
                if (invoice is None or p["invoice"] == invoice) and (status is None or p["status"] == status)
                and all(p["payment"].get(name) == value for name, value in by_payment.items())]
    return paginate(payments, params, "/v1/invoice_payments")


# Stripe finds invoice payments by the object that paid them, PaymentIntent or PaymentRecord (never by charge).
PAYMENT_FILTER_TYPES = ("payment_intent", "payment_record")


def _payment_filter(payment: Obj | None) -> dict[str, str]:
    """The `payment` hash of the list, as the fields of `invoice_payment.payment` it must match."""
    if payment is None:
        return {}
    for name in payment:
        if name not in ("type", *PAYMENT_FILTER_TYPES):
            raise parameter_unknown(f"payment[{name}]")
    kind = payment.get("type")
    if not kind:
        raise parameter_missing("payment[type]")
    if kind not in PAYMENT_FILTER_TYPES:
        raise parameter_invalid("payment[type]", f"Invalid payment[type]: must be one of {' or '.join(PAYMENT_FILTER_TYPES)}")
    wanted = {"type": kind}
    if payment.get(kind):
        wanted[kind] = str(payment[kind])
    return wanted


@router.add("GET", "/v1/charges/{charge_id}")
def retrieve_charge(sb: Sandbox, params: Params, charge_id: str) -> Obj:
    return sb.store.get("charge", charge_id)


@router.add("GET", "/v1/charges", {"limit", "starting_after", "ending_before", "customer"})
def list_charges(sb: Sandbox, params: Params) -> Obj:
    customer = params.text("customer")
    charges = [c for c in sb.store.all("charge") if customer is None or c["customer"] == customer]
    return paginate(charges, params, "/v1/charges")


@router.add("GET", "/v1/tax_rates/{tax_rate_id}")
def retrieve_tax_rate(sb: Sandbox, params: Params, tax_rate_id: str) -> Obj:
    return sb.store.get("tax_rate", tax_rate_id)

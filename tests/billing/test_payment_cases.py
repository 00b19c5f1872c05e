"""The seed's StripeClientTests and GetDashboardRevenueTrendTests cases (reference §7), as our rules state them."""
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from backoffice.billing.ledger import revenue
from backoffice.billing.ledger.ordering import ArchivedEvent
from backoffice.billing.ledger.payments import fold_payments
from backoffice.billing.ledger.pricing import Catalog
from backoffice.billing.models import PaymentTransaction
from backoffice.billing.replay.projection import payment_method
from backoffice.stripe_gateway.results import PriceInfo
from tests.factories import make_subscription, payment_values

CATALOG = Catalog([PriceInfo("price_std", "prod_std", "standard", Decimal(49), "EUR", "month", 1, "exclusive", True),
                   PriceInfo("price_prem", "prod_prem", "premium", Decimal(99), "EUR", "month", 1, "exclusive", True)],
                  ("basis", "standard", "premium"))


def invoice(status="paid", total=6125, tax=1225, paid=None, lines=None, **fields):
    return {"id": "in_1", "object": "invoice", "status": status, "currency": "eur", "created": 1767225600,
            "total": total, "total_taxes": [{"amount": tax}], "amount_paid": total if paid is None else paid,
            "lines": {"data": lines or [{"amount": total - tax, "pricing": {"price_details": {"price": "price_std"}}}]},
            **fields}


def fold(*objects, link_charge=None):
    events = [ArchivedEvent(f"evt_{i}", f"{o['object']}.updated", 1767225600 + i, "2025-03-31.basil",
                            {"data": {"object": o}}) for i, o in enumerate(objects)]
    return fold_payments(events, CATALOG, link_charge)


def test_the_amount_breaks_down_into_ex_vat_and_tax():
    [payment] = fold(invoice())
    assert (payment.amount, payment.amount_excluding_tax, payment.tax_amount, payment.invoice_total) == (
        Decimal("61.25"), Decimal("49.00"), Decimal("12.25"), Decimal("61.25"))
    assert (payment.status, payment.plan, payment.clamped) == ("succeeded", "standard", False)


def test_tax_above_the_total_clamps_the_ex_vat_amount_at_zero_and_says_so():
    [payment] = fold(invoice(total=100, tax=150))
    assert (payment.amount_excluding_tax, payment.clamped) == (Decimal("0.00"), True)


def test_customer_credit_pays_part_of_an_invoice():
    [payment] = fold(invoice(paid=1125))
    assert (payment.amount, payment.amount_from_credit) == (Decimal("11.25"), Decimal("50.00"))
    # Only the money paid is revenue: 49.00 ex VAT × 11.25 / 61.25 = 9.00, and 2.25 of VAT with it.
    assert (payment.amount_excluding_tax, payment.tax_amount, payment.invoice_total) == (
        Decimal("9.00"), Decimal("2.25"), Decimal("61.25"))


def test_a_credit_invoice_is_no_money_and_no_revenue():
    """A downgrade's unused time invoiced as a negative total: the customer's balance grows, nothing is paid."""
    [payment] = fold(invoice(total=-14399, tax=-2880, paid=0))
    assert (payment.amount, payment.amount_excluding_tax, payment.tax_amount, payment.invoice_total,
            payment.amount_from_credit, payment.clamped) == (Decimal("0.00"),) * 5 + (False,)


@pytest.mark.parametrize("status, expected, failure", [
    ("paid", "succeeded", None), ("open", "pending", None), ("uncollectible", "failed", "Payment failed."),
    ("void", "cancelled", None),
])
def test_the_status_map(status, expected, failure):
    [payment] = fold(invoice(status=status))
    assert (payment.status, payment.failure_reason) == (expected, failure)


def test_a_draft_is_no_payment_yet_and_a_full_refund_makes_it_refunded():
    assert fold(invoice(status="draft")) == []
    charge = {"id": "ch_1", "object": "charge", "invoice": "in_1", "amount_refunded": 6125, "currency": "eur"}
    [payment] = fold(invoice(), charge)
    assert (payment.status, payment.refunded_amount) == ("refunded", Decimal("49.00"))


def test_a_refunded_charge_reaches_its_invoice_through_the_payment_intent_of_its_invoice_payment():
    charge = {"id": "ch_1", "object": "charge", "payment_intent": "pi_1", "amount_refunded": 6125, "currency": "eur"}
    paid_by = {"id": "inpay_1", "object": "invoice_payment", "invoice": "in_1",
               "payment": {"type": "payment_intent", "payment_intent": "pi_1"}}
    asked = []
    [payment] = fold(invoice(), paid_by, charge, link_charge=lambda charge_id: asked.append(charge_id))
    assert (payment.status, payment.refunded_amount, asked) == ("refunded", Decimal("49.00"), [])


def test_a_refunded_charge_the_archive_cannot_tie_is_asked_for_once():
    charge = {"id": "ch_1", "object": "charge", "amount_refunded": 6125, "currency": "eur"}
    asked = []

    def link(charge_id):
        asked.append(charge_id)
        return "in_1"
    [payment] = fold(invoice(), charge, {**charge, "amount_refunded": 6125}, link_charge=link)
    assert (payment.status, payment.refunded_amount, asked) == ("refunded", Decimal("49.00"), ["ch_1"])
    [unlinked] = fold(invoice(), charge)
    assert (unlinked.status, unlinked.refunded_amount) == ("succeeded", Decimal("0.00"))


def test_a_proration_takes_the_plan_of_its_largest_positive_line():
    lines = [{"amount": -2450, "pricing": {"price_details": {"price": "price_std"}}},
             {"amount": 4950, "pricing": {"price_details": {"price": "price_prem"}}}]
    [payment] = fold(invoice(total=3125, tax=625, lines=lines))
    assert payment.plan == "premium"


def test_payment_method_mapping_with_the_link_sentinel():
    customer = {"id": "cus_1", "invoice_settings": {"default_payment_method": "pm_1"}}
    card = {"id": "pm_1", "object": "payment_method", "type": "card", "customer": "cus_1",
            "card": {"brand": "mastercard", "last4": "4444", "exp_month": 3, "exp_year": 2029}}
    assert payment_method(customer, {"pm_1": card}) == {"brand": "mastercard", "last4": "4444", "exp_month": 3,
                                                         "exp_year": 2029}
    link = {"id": "pm_1", "object": "payment_method", "type": "link", "customer": "cus_1"}
    assert payment_method(customer, {"pm_1": link}) == {"brand": "link", "last4": "****", "exp_month": 0, "exp_year": 0}
    assert payment_method({"id": "cus_1"}, {}) is None


# --- revenue trend (GetDashboardRevenueTrendTests) ---------------------------------------------------------------

JAN = date(2026, 1, 1)


def at(day: int, month: int = 1) -> datetime:
    return datetime(2026, month, day, 12, tzinfo=UTC)


@pytest.fixture
def paid(db_session):
    subscription = make_subscription(db_session)

    def add(**overrides):
        db_session.add(PaymentTransaction(**payment_values(subscription, **overrides)))
        db_session.flush()
    return add


def series(db_session, first=date(2026, 1, 10), last=date(2026, 1, 20)):
    return dict(revenue.cumulative_series(db_session, "EUR", first, last))


def test_an_empty_ledger_is_zero_every_day(db_session):
    assert set(series(db_session).values()) == {Decimal("0.00")}


def test_payments_accumulate_and_the_series_starts_at_the_all_time_total(db_session, paid):
    paid(date=at(2))  # before the window: rolls into its start
    paid(date=at(12))
    paid(date=at(15))
    points = series(db_session)
    assert (points[date(2026, 1, 10)], points[date(2026, 1, 12)], points[date(2026, 1, 20)]) == (
        Decimal(49), Decimal(98), Decimal(147))


def test_a_refund_adds_on_the_paid_day_and_subtracts_on_the_refund_day(db_session, paid):
    paid(date=at(12), status="refunded", refunded_amount=Decimal(49), refunded_at=at(16))
    points = series(db_session)
    assert (points[date(2026, 1, 12)], points[date(2026, 1, 16)]) == (Decimal(49), Decimal(0))


def test_a_credit_note_subtracts_on_its_day_and_a_refund_only_credit_on_the_refund_day(db_session, paid):
    paid(date=at(11), credited_amount=Decimal("24.50"), credit_noted_at=at(14))
    paid(date=at(11), credited_amount=Decimal(49), credit_noted_at=None, refunded_at=at(17))
    points = series(db_session)
    assert points[date(2026, 1, 11)] == Decimal(98)
    assert points[date(2026, 1, 14)] == Decimal("73.50")
    assert points[date(2026, 1, 17)] == Decimal("24.50")


def test_failed_pending_and_cancelled_payments_never_count(db_session, paid):
    for status in ("failed", "pending", "cancelled"):
        paid(date=at(12), status=status)
    assert set(series(db_session).values()) == {Decimal("0.00")}
    assert revenue.total_revenue(db_session, "EUR") == Decimal("0.00")

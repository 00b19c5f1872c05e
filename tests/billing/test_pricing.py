"""Plans, prices and monthly amounts (DESIGN §4.1) and forward MRR (§4.5): pure functions, no database, no network.

Every expected amount below is worked out by hand from the prices; the comments show the arithmetic.
"""
from decimal import Decimal

import pytest

from backoffice.billing.ledger.ordering import ArchivedEvent
from backoffice.billing.ledger.pricing import (
    Catalog,
    Lookup,
    MissingKnowledge,
    Pricing,
    UnknownPlan,
    forever_coupons,
    forward_mrr,
    invoice_tax_rate,
    monthly_amount,
    plan_of,
)
from backoffice.billing.ledger.resolvers import BASIL_FAMILY, PRE_BASIL, ApiVersions, Item
from backoffice.billing.ledger.rules import LedgerRules
from backoffice.money import to_major
from backoffice.stripe_gateway.results import PriceInfo

ORDER = ("basis", "standard", "premium")
BASIL = "2025-03-31.basil"


def D(value: str) -> Decimal:  # noqa: N802 (reads like the literal it stands for)
    return Decimal(value)


def price(price_id, unit_amount, *, currency="eur", interval="month", interval_count=1, tax_behavior="exclusive",
          plan=None):
    """A Stripe price object as subscription items expand it."""
    return {"id": price_id, "object": "price", "currency": currency, "unit_amount": unit_amount,
            "recurring": {"interval": interval, "interval_count": interval_count}, "tax_behavior": tax_behavior,
            "metadata": {"plan": plan} if plan else {}}


def subscription(*prices, quantities=None, status="active", cancel_at_period_end=False, **fields):
    """A subscription with one item per price (quantity 1 unless given)."""
    quantities = quantities or [1] * len(prices)
    items = [{"id": f"si_{n}", "object": "subscription_item", "price": p, "quantity": q}
             for n, (p, q) in enumerate(zip(prices, quantities, strict=True))]
    return {"id": "sub_1", "object": "subscription", "customer": "cus_1", "status": status,
            "cancel_at_period_end": cancel_at_period_end, "items": {"object": "list", "data": items}, **fields}


def entry(price_id, unit_amount, *, plan="standard", currency="EUR", interval="month", interval_count=1,
          tax_behavior="exclusive"):
    """A catalog row (the gateway's PriceInfo): amounts already in major units."""
    return PriceInfo(id=price_id, product_id="prod_1", plan=plan, unit_amount=None if unit_amount is None else D(unit_amount),
                     currency=currency, interval=interval, interval_count=interval_count, tax_behavior=tax_behavior,
                     active=True)


def monthly(*prices, quantities=None, catalog=None, tax_rate=None, coupons=()):
    items = PRE_BASIL.subscription_items(subscription(*prices, quantities=quantities))
    return monthly_amount(items, catalog or Catalog([], ORDER), tax_rate=tax_rate, coupons=coupons)


def forward(sub, schedule=None, *, catalog=None, resolver=PRE_BASIL, lookup=None, tax_rate=None):
    return forward_mrr(sub, schedule, catalog or Catalog([], ORDER), resolver, lookup or Lookup(), tax_rate)


def coupon(duration, *, percent_off=None, amount_off=None, currency="eur", coupon_id="co_1"):
    return {"id": coupon_id, "object": "coupon", "duration": duration, "percent_off": percent_off,
            "amount_off": amount_off, "currency": currency}


class Fetches:
    """A fetch callback that records what it was asked for."""

    def __init__(self, answers):
        self.answers = answers
        self.asked = []

    def __call__(self, object_id):
        self.asked.append(object_id)
        return self.answers.get(object_id)


# --- plans and plan order ----------------------------------------------------------------------------------

def test_plan_order_ranks_known_plans_then_unknown_ones():
    catalog = Catalog([], ORDER)
    assert [catalog.rank(p) for p in ("basis", "standard", "premium", "enterprise")] == [0, 1, 2, 3]
    assert catalog.rank(None) == -1
    custom = Catalog([], ("basis", "premium", "standard"))
    assert custom.rank("standard") > custom.rank("premium")


def test_plan_of_reads_the_payload_then_the_catalog_first_item_naming_one():
    catalog = Catalog([entry("price_cat", "49", plan="premium"), entry("price_addon", "5", plan=None)], ORDER)
    assert plan_of(PRE_BASIL.subscription_items(subscription(price("price_std", 4900, plan="standard"))),
                   catalog) == "standard"
    # A price without metadata.plan takes the catalog's plan (its product's metadata), skipping add-ons naming none.
    items = PRE_BASIL.subscription_items(subscription(price("price_addon", 500), price("price_cat", 4900)))
    assert plan_of(items, catalog) == "premium"
    assert plan_of([], catalog) is None


def test_a_price_naming_no_plan_raises_unknown_plan():
    items = PRE_BASIL.subscription_items(subscription(price("price_x", 1500)))
    with pytest.raises(UnknownPlan, match="price_x"):
        plan_of(items, Catalog([entry("price_x", "15", plan=None)], ORDER))


def test_a_price_neither_known_nor_fetchable_is_missing_knowledge_not_a_guess():
    """Unclassified is for a price that names no plan; a price nobody could look up is not priced at all."""
    items = PRE_BASIL.subscription_items(subscription({"id": "price_x"}))
    with pytest.raises(MissingKnowledge, match="price price_x"):
        plan_of(items, Catalog([], ORDER))
    with pytest.raises(MissingKnowledge, match="price price_x"):
        monthly_amount(items, Catalog([], ORDER))
    # Stripe says there is no such price: known, and Unclassified by the rules rather than waited for.
    with pytest.raises(UnknownPlan):
        plan_of(items, Catalog([], ORDER, Fetches({})))


def test_a_price_missing_from_the_catalog_is_fetched_once():
    fetch = Fetches({"price_new": entry("price_new", "59", plan="standard")})
    catalog = Catalog([], ORDER, fetch)
    items = PRE_BASIL.subscription_items(subscription({"id": "price_new"}, {"id": "price_gone"}))
    for _ in range(3):
        assert plan_of(items, catalog) == "standard"
        assert monthly_amount(items, catalog) == D("59.00")
    assert sorted(fetch.asked) == ["price_gone", "price_new"]  # each asked once, the unknown one too
    assert [p.id for p in catalog.fetched] == ["price_new"]


def rules_replay(*events, plan_order=ORDER, catalog_prices=()):
    rules = LedgerRules(Pricing(Catalog(catalog_prices, plan_order)), ApiVersions([BASIL]))
    return [(r.event_type, r.from_plan, r.to_plan, r.previous_amount, r.new_amount, r.amount_delta, r.committed_mrr,
             r.movement) for r in rules.replay(events).rows]


def subscription_events(before, after):
    """customer.subscription.created on `before`'s price, then the update that moves the item to `after`."""
    old = subscription(before)
    new = subscription(after)
    previous = {"items": {"data": old["items"]["data"]}}
    return (ArchivedEvent("evt_1", "customer.subscription.created", 100, BASIL, {"data": {"object": old}}),
            ArchivedEvent("evt_2", "customer.subscription.updated", 200, BASIL,
                          {"data": {"object": new, "previous_attributes": previous}}))


STANDARD = price("price_std", 4900, plan="standard")
PREMIUM = price("price_prem", 9900, plan="premium")


@pytest.mark.parametrize("plan_order, expected", [
    (ORDER, ("SubscriptionUpgraded", "standard", "premium", D("49.00"), D("99.00"), D("50.00"), D("99.00"),
             "expansion")),
    # A custom PLAN_ORDER where premium sits below standard: the order decides, not the price.
    (("basis", "premium", "standard"), ("SubscriptionDowngraded", "standard", "premium", D("49.00"), D("99.00"),
                                        D("50.00"), D("99.00"), "other")),
])
def test_a_different_plan_is_up_or_down_by_plan_order(plan_order, expected):
    rows = rules_replay(*subscription_events(STANDARD, PREMIUM), plan_order=plan_order)
    assert rows[0][:2] == ("SubscriptionCreated", None)
    assert rows[1] == expected


def test_plan_order_beats_amount_for_a_cheaper_higher_plan():
    cheap_premium = price("price_prem_promo", 2900, plan="premium")
    rows = rules_replay(*subscription_events(STANDARD, cheap_premium))
    assert rows[1] == ("SubscriptionUpgraded", "standard", "premium", D("49.00"), D("29.00"), D("-20.00"),
                       D("29.00"), "other")


@pytest.mark.parametrize("after, expected", [
    (price("price_std_2026", 5900, plan="standard"),
     ("SubscriptionUpgraded", "standard", "standard", D("49.00"), D("59.00"), D("10.00"), D("59.00"), "expansion")),
    (price("price_std_promo", 3900, plan="standard"),
     ("SubscriptionDowngraded", "standard", "standard", D("49.00"), D("39.00"), D("-10.00"), D("39.00"),
      "contraction")),
    # Another price at the same monthly amount (yearly 588.00 = 49.00 a month): nothing changed, NoOp.
    (price("price_std_yearly", 58800, interval="year", plan="standard"),
     ("NoOp", "standard", "standard", None, None, None, D("49.00"), None)),
])
def test_the_same_plan_at_another_amount_is_decided_by_the_amount(after, expected):
    rows = rules_replay(*subscription_events(STANDARD, after))
    assert rows[1] == expected


# --- monthly amounts -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("unit_amount, interval, interval_count, quantity, expected", [
    (4900, "month", 1, 1, "49.00"),
    (12000, "year", 1, 1, "10.00"),       # 120.00 ÷ 12
    (12000, "year", 2, 1, "5.00"),        # every two years: 120.00 ÷ 24
    (3000, "month", 3, 1, "10.00"),       # every 3 months: 30.00 ÷ 3
    (1000, "week", 1, 1, "43.33"),        # 10.00 × 52 ÷ 12 = 43.333…
    (1000, "week", 2, 1, "21.67"),        # every two weeks: 10.00 × 26 ÷ 12 = 21.666…
    (4900, "month", 1, 3, "147.00"),      # quantity 3
    (12000, "year", 1, 5, "50.00"),       # 5 seats at 120.00 a year
    (3000, "month", None, 1, "30.00"),    # no interval_count: one month
])
def test_monthly_normalization(unit_amount, interval, interval_count, quantity, expected):
    sold = price("price_x", unit_amount, interval=interval, interval_count=interval_count)
    assert monthly(sold, quantities=[quantity]) == D(expected)


def test_items_add_up():
    assert monthly(price("price_a", 4900), price("price_b", 1000, interval="year"), quantities=[2, 3]) == D("100.50")
    # 2 × 49.00 + 3 × 10.00 ÷ 12 = 98.00 + 2.50


def test_the_catalog_fills_what_the_payload_lacks_and_the_payload_wins_where_it_has_it():
    catalog = Catalog([entry("price_y", "49.00", interval="year"), entry("price_m", "59.00")], ORDER)
    assert monthly({"id": "price_y"}, catalog=catalog) == D("4.08")  # 49.00 ÷ 12 = 4.0833…
    # The archived payload keeps the amount a subscriber locked in; the catalog has the current one.
    assert monthly(price("price_m", 4900), catalog=catalog) == D("49.00")


def test_rounded_half_even_to_cents_once_at_the_end():
    # Three items of 10.00 a year: 0.8333… each. Rounding each would give 3 × 0.83 = 2.49; once, 2.50.
    yearly = price("price_y", 1000, interval="year")
    assert monthly(yearly, yearly, yearly) == D("2.50")
    assert monthly(yearly, quantities=[3]) == D("2.50")
    # Half-even: 1.50 a year = 0.125 → 0.12 (half-up would say 0.13); 4.50 a year = 0.375 → 0.38.
    assert monthly(price("price_h", 150, interval="year")) == D("0.12")
    assert monthly(price("price_h", 450, interval="year")) == D("0.38")


def test_tax_inclusive_prices_are_divided_by_one_plus_the_invoice_rate():
    invoice = {"object": "invoice", "total": 12500, "total_excluding_tax": 10000}
    rate = invoice_tax_rate(invoice)
    assert rate == D("0.25")
    assert monthly(price("price_incl", 12500, tax_behavior="inclusive"), tax_rate=rate) == D("100.00")
    assert monthly(price("price_excl", 12500, tax_behavior="exclusive"), tax_rate=rate) == D("125.00")
    # The catalog's tax behaviour counts when the payload does not say.
    catalog = Catalog([entry("price_cat", "119.00", tax_behavior="inclusive")], ORDER)
    assert monthly({"id": "price_cat"}, catalog=catalog, tax_rate=D("0.19")) == D("100.00")
    # Rounding once: 10.00 inclusive of 19 % is 8.4033…, three of them 25.2100… → 25.21 (per item 3 × 8.40 = 25.20).
    small = price("price_small", 1000, tax_behavior="inclusive")
    assert monthly(small, small, small, tax_rate=D("0.19")) == D("25.21")


@pytest.mark.parametrize("invoice, expected", [
    ({"total": 11900, "total_excluding_tax": 10000}, D("0.19")),
    ({"total": 10000, "total_excluding_tax": 10000}, D("0")),
    ({"total": 0, "total_excluding_tax": 0}, None),           # a 100 % discounted invoice says nothing
    ({"total": 0, "total_excluding_tax": None}, None),        # old invoices without the field
    (None, None),
])
def test_invoice_tax_rate(invoice, expected):
    assert invoice_tax_rate(invoice) == expected


def test_zero_decimal_currency():
    assert to_major(1000, "jpy") == D("1000") and to_major(1000, "EUR") == D("10")
    assert monthly(price("price_jpy", 1000, currency="jpy")) == D("1000.00")
    assert monthly(price("price_jpy_y", 10000, currency="jpy", interval="year")) == D("833.33")
    # 10,000 JPY a year ÷ 12 = 833.333…; a forever coupon of 100 JPY a year takes 8.333… more.
    sub = subscription(price("price_jpy_y", 10000, currency="jpy", interval="year"),
                       discount={"coupon": coupon("forever", amount_off=100, currency="jpy")})
    assert forward(sub) == D("825.00")


# --- forever coupons ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("discount_coupon, expected", [
    (coupon("forever", percent_off=25.5), "74.50"),           # 100.00 × 0.745
    (coupon("forever", amount_off=500), "95.00"),             # 100.00 − 5.00
    (coupon("forever", amount_off=20000), "0.00"),            # never below zero
    (coupon("once", percent_off=50), "100.00"),               # not Stripe's MRR
    (coupon("repeating", amount_off=500), "100.00"),
])
def test_forever_coupons_reduce_mrr_once_and_repeating_do_not(discount_coupon, expected):
    sub = subscription(price("price_x", 10000), discount={"object": "discount", "coupon": discount_coupon})
    assert forward(sub) == D(expected)


def test_an_amount_off_coupon_is_per_invoice_so_a_yearly_price_spreads_it():
    sub = subscription(price("price_y", 12000, interval="year"),
                       discount={"coupon": coupon("forever", amount_off=1200)})
    assert forward(sub) == D("9.00")  # (120.00 − 12.00) ÷ 12


def test_basil_discount_ids_are_resolved_through_the_lookup():
    sub = subscription(price("price_x", 10000), discounts=["di_1"])
    discount = {"id": "di_1", "object": "discount", "source": {"type": "coupon", "coupon": "co_1"}}
    forever = coupon("forever", percent_off=10)
    # The as-of objects have both.
    assert forward(sub, resolver=BASIL_FAMILY, lookup=Lookup({"di_1": discount, "co_1": forever})) == D("90.00")
    # The discount is announced later in the same second: the archive's latest version serves (fallback).
    assert forward(sub, resolver=BASIL_FAMILY, lookup=Lookup({}, {"di_1": discount, "co_1": forever})) == D("90.00")
    # The coupon is in no customer's archive: fetched, once, however often MRR is computed.
    fetch = Fetches({"co_1": forever})
    lookup = Lookup({"di_1": discount}, fetch_coupon=fetch)
    assert [forward(sub, resolver=BASIL_FAMILY, lookup=lookup) for _ in range(3)] == [D("90.00")] * 3
    assert fetch.asked == ["co_1"]
    # Unknown everywhere: not priced at all (a full price would be a wrong row, DESIGN §4.6).
    with pytest.raises(MissingKnowledge, match="discount di_1"):
        forward(sub, resolver=BASIL_FAMILY, lookup=Lookup())
    with pytest.raises(MissingKnowledge, match="coupon co_1"):
        forward(sub, resolver=BASIL_FAMILY, lookup=Lookup({"di_1": discount}))


def test_a_coupon_stripe_no_longer_has_is_asked_for_once():
    sub = subscription(price("price_x", 10000), discounts=[{"id": "di_1", "coupon": "co_deleted"}])
    fetch = Fetches({})
    lookup = Lookup(fetch_coupon=fetch)
    assert [forward(sub, resolver=BASIL_FAMILY, lookup=lookup) for _ in range(3)] == [D("100.00")] * 3
    assert fetch.asked == ["co_deleted"]


def test_forever_coupons_read_percent_and_amount_in_major_units():
    sub = subscription(price("price_x", 10000), discounts=[
        {"coupon": coupon("forever", percent_off=12.5)}, {"coupon": coupon("forever", amount_off=250)},
        {"coupon": coupon("repeating", percent_off=99)}])
    coupons = forever_coupons(sub, BASIL_FAMILY, Lookup())
    assert [(c.percent_off, c.amount_off) for c in coupons] == [(D("12.5"), None), (None, D("2.50"))]
    assert forward(sub, resolver=BASIL_FAMILY) == D("85.00")  # 100.00 × 0.875 − 2.50


# --- forward MRR ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("status, cancel_at_period_end, expected", [
    ("active", False, "49.00"),
    ("trialing", False, "49.00"),
    ("past_due", False, "49.00"),
    ("active", True, "0.00"),
    ("canceled", False, "0.00"),
    ("incomplete_expired", False, "0.00"),
])
def test_forward_mrr_is_zero_once_ended_or_cancelling(status, cancel_at_period_end, expected):
    sub = subscription(STANDARD, status=status, cancel_at_period_end=cancel_at_period_end)
    assert forward(sub) == D(expected)
    assert forward(None) == D("0.00")


def schedule(status, *phase_prices, subscription_id="sub_1"):
    return {"id": "sub_sched_1", "object": "subscription_schedule", "status": status, "subscription": subscription_id,
            "phases": [{"items": [{"price": price_id, "quantity": 1}]} for price_id in phase_prices]}


SCHEDULE_CATALOG = [entry("price_prem", "99.00", plan="premium"), entry("price_std", "49.00")]


@pytest.mark.parametrize("governing, expected", [
    (schedule("active", "price_prem", "price_std"), "49.00"),       # a downgrade scheduled: the last phase
    (schedule("not_started", "price_prem", "price_std"), "49.00"),
    (schedule("released", "price_prem", "price_std"), "99.00"),     # no longer in force
    (schedule("canceled", "price_prem", "price_std"), "99.00"),
    (schedule("completed", "price_prem", "price_std"), "99.00"),
    (schedule("active", "price_std", "price_prem"), "99.00"),       # last phase = the current price
    (schedule("active", "price_std"), "99.00"),                     # one phase schedules nothing
    (schedule("active", "price_prem", "price_std", subscription_id="sub_other"), "99.00"),
    (None, "99.00"),
])
def test_the_schedule_last_phase_counts_only_while_in_force_and_different(governing, expected):
    sub = subscription(price("price_prem", 9900, plan="premium"))
    assert forward(sub, governing, catalog=Catalog(SCHEDULE_CATALOG, ORDER)) == D(expected)


def test_a_last_phase_on_the_current_price_keeps_the_current_items():
    # The current price is in the payload only (the catalog lacks it): the phase naming the same price by id
    # must not replace the current items.
    sub = subscription(price("price_legacy", 7900, plan="premium"))
    governing = schedule("active", "price_std", "price_legacy")
    assert forward(sub, governing, catalog=Catalog(SCHEDULE_CATALOG, ORDER)) == D("79.00")


def test_a_cancelling_subscription_is_zero_even_with_a_schedule():
    sub = subscription(price("price_prem", 9900, plan="premium"), cancel_at_period_end=True)
    assert forward(sub, schedule("active", "price_prem", "price_std"), catalog=Catalog(SCHEDULE_CATALOG, ORDER)) == 0


def test_items_are_read_as_the_resolver_sees_them():
    sub = subscription(price("price_x", 4900), quantities=[2])
    assert PRE_BASIL.subscription_items(sub) == [Item("price_x", 2, 4900, "EUR", "month", 1, "exclusive")]
    assert forward(sub, resolver=BASIL_FAMILY) == forward(sub, resolver=PRE_BASIL) == D("98.00")


def test_the_free_plan_is_the_first_of_plan_order_not_a_name():
    """An immediate cancellation goes to the free plan, whatever PLAN_ORDER calls it."""
    created = subscription(STANDARD)
    deleted = {**created, "status": "canceled"}
    events = (ArchivedEvent("evt_1", "customer.subscription.created", 100, BASIL, {"data": {"object": created}}),
              ArchivedEvent("evt_2", "customer.subscription.deleted", 200, BASIL, {"data": {"object": deleted}}))
    rows = rules_replay(*events, plan_order=("gratis", "standard", "premium"))
    assert rows[1] == ("SubscriptionImmediatelyCancelled", "standard", "gratis", D("49.00"), D("0.00"), D("-49.00"),
                       D("0.00"), "churn")


def test_every_event_type_and_movement_has_an_operator_label():
    from backoffice.billing.ledger.vocabulary import AccountStatus, EventType, Movement
    from backoffice.web.formatting import ACCOUNT_STATUS_LABELS, BILLING_EVENT_LABELS, MOVEMENT_LABELS

    assert set(BILLING_EVENT_LABELS) == set(EventType)
    assert set(MOVEMENT_LABELS) == {*Movement, "fx"}  # and the reports' exchange-rate movement
    assert set(ACCOUNT_STATUS_LABELS) == set(AccountStatus)

"""The API version allow-list (DESIGN §4.2) and each resolver family's field access on Stripe's own objects:
stripe/openapi's fixtures3.json (basil and later), pay-rails' basil-era objects, supabase's 2020-03-02 envelopes.
The samples are read from ../shared at test time; without them these tests are skipped with the reason."""
import copy
import json
from decimal import Decimal

import pytest

from backoffice.billing.intake.webhook import read_envelope
from backoffice.billing.ledger.pricing import (
    Catalog,
    Coupon,
    Lookup,
    MissingKnowledge,
    forever_coupons,
    forward_mrr,
    invoice_tax_rate,
)
from backoffice.billing.ledger.resolvers import BASIL_FAMILY, PRE_BASIL, ApiVersions, Item
from backoffice.config import DEFAULT_STRIPE_API_VERSIONS
from tests.samples import load_samples

BASIL_CODENAMES = ("basil", "clover", "dahlia", "endive")


@pytest.fixture(scope="module")
def samples():
    return load_samples()


def pay_rails(samples, name):
    """A pay-rails object (a bare `data.object`, basil era)."""
    return json.loads((samples.root / "stripe-fixtures" / "pay-rails" / f"{name}.object.json").read_text())["object"]


# --- the allow-list ---------------------------------------------------------------------------------------------

def test_only_listed_versions_have_a_resolver():
    versions = ApiVersions(["2020-03-02", "2025-03-31.basil"])
    assert versions.resolver("2020-03-02") is PRE_BASIL
    assert versions.resolver("2025-03-31.basil") is BASIL_FAMILY
    for unlisted in ("2020-08-27", "2025-10-29.clover", "2025-03-31", "2025-03-31.BASIL", " 2020-03-02", "", None):
        assert versions.resolver(unlisted) is None, unlisted


@pytest.mark.parametrize("version", DEFAULT_STRIPE_API_VERSIONS)
def test_the_default_list_maps_each_version_to_its_family(version):
    # Independent of the resolver's rule (the date): the codename says which family Stripe shipped it in.
    expected = BASIL_FAMILY if version.rpartition(".")[2] in BASIL_CODENAMES else PRE_BASIL
    assert ApiVersions(DEFAULT_STRIPE_API_VERSIONS).resolver(version) is expected


def test_the_default_list_holds_the_versions_the_design_names():
    named_pre = ("2020-03-02", "2020-08-27", "2022-11-15", "2023-10-16", "2024-06-20", "2024-09-30.acacia")
    named_basil = ("2025-03-31.basil", "2025-09-30.clover", "2025-10-29.clover", "2026-05-27.dahlia",
                   "2026-06-24.dahlia", "2026-07-29.dahlia", "2026-10-28.endive")
    versions = ApiVersions(DEFAULT_STRIPE_API_VERSIONS)
    assert [versions.resolver(v) for v in named_pre] == [PRE_BASIL] * len(named_pre)
    assert [versions.resolver(v) for v in named_basil] == [BASIL_FAMILY] * len(named_basil)
    # The seed's preview version and anything older than the oldest shape we read are not replayed.
    assert versions.resolver("2025-09-30.preview") is None
    assert versions.resolver("2019-12-03") is None


# --- basil and later: stripe/openapi fixtures3 ------------------------------------------------------------------

def test_basil_subscription_sample(samples):
    subscription = samples.resources["subscription"]
    raw_item = subscription["items"]["data"][0]
    assert BASIL_FAMILY.period_end(subscription) == raw_item["current_period_end"] == 976287773
    assert PRE_BASIL.period_end(subscription) is None  # basil moved it off the subscription
    assert BASIL_FAMILY.subscription_items(subscription) == [
        Item(price_id="price_1PgafmB7WZ01zgkW6dKueIc5", quantity=1, unit_amount=2000, currency="USD", interval="month",
             interval_count=1, tax_behavior="unspecified", plan=None)]
    assert BASIL_FAMILY.subscription_currency(subscription) == "USD"
    assert BASIL_FAMILY.discount_refs(subscription) == []
    catalog = Catalog([], ("basis", "standard", "premium"))
    assert forward_mrr({**subscription, "status": "active", "cancel_at_period_end": False}, None, catalog,
                       BASIL_FAMILY, Lookup()) == Decimal("20.00")


def test_basil_period_end_is_the_earliest_item_end(samples):
    subscription = copy.deepcopy(samples.resources["subscription"])
    later = {**subscription["items"]["data"][0], "id": "si_later", "current_period_end": 976287773 + 86400}
    subscription["items"]["data"].append(later)
    assert BASIL_FAMILY.period_end(subscription) == 976287773
    subscription["items"]["data"] = [later]
    assert BASIL_FAMILY.period_end(subscription) == 976287773 + 86400


def test_basil_invoice_sample_names_its_subscription_under_parent(samples):
    invoice = samples.resources["invoice"]
    assert invoice["subscription"] is None
    assert BASIL_FAMILY.invoice_subscription(invoice) == invoice["parent"]["subscription_details"]["subscription"]
    assert BASIL_FAMILY.invoice_subscription(invoice) == "subscription"  # the sample's placeholder id
    assert PRE_BASIL.invoice_subscription(invoice) is None
    assert invoice_tax_rate(invoice) == Decimal(0)  # total 1000 = total_excluding_tax 1000


def test_basil_discount_sample_reaches_its_coupon_through_source(samples):
    discount = {**samples.resources["discount"], "source": {"type": "coupon", "coupon": "Z4OV52SU"}}
    coupon = samples.resources["coupon"]  # 25.5 % off, forever
    subscription = {**samples.resources["subscription"], "discounts": [discount["id"]]}
    assert BASIL_FAMILY.discount_refs(subscription) == ["di_1Pgc6rB7WZ01zgkW7Al8Fal9"]
    assert BASIL_FAMILY.coupon_of(discount) == "Z4OV52SU"
    lookup = Lookup({discount["id"]: discount, coupon["id"]: coupon})
    assert forever_coupons(subscription, BASIL_FAMILY, lookup) == [Coupon(percent_off=Decimal("25.5"), amount_off=None)]


# --- basil era: pay-rails --------------------------------------------------------------------------------------

def test_pay_rails_failed_invoice_names_its_subscription_only_under_parent(samples):
    invoice = pay_rails(samples, "invoice.payment_failed")
    assert "subscription" not in invoice
    assert BASIL_FAMILY.invoice_subscription(invoice) == "sub_1234"
    assert PRE_BASIL.invoice_subscription(invoice) is None
    assert invoice_tax_rate(invoice) == Decimal(0)
    envelope = read_envelope(json.dumps({"id": "evt_pay_1", "object": "event", "type": "invoice.payment_failed",
                                         "created": invoice["created"], "api_version": "2025-03-31.basil",
                                         "data": {"object": invoice}}).encode())
    assert (envelope.customer_id, envelope.subscription_id) == ("cus_1234", "sub_1234")


def test_pay_rails_action_required_invoice_carries_both_shapes(samples):
    invoice = pay_rails(samples, "invoice.payment_action_required")
    assert BASIL_FAMILY.invoice_subscription(invoice) == PRE_BASIL.invoice_subscription(invoice) == "sub_1234"


def test_pay_rails_basil_charge_names_no_invoice(samples):
    charge = pay_rails(samples, "charge.updated")
    assert "invoice" not in charge  # DESIGN §4.10: linked through invoice_payment.paid instead
    envelope = read_envelope(json.dumps({"id": "evt_pay_2", "object": "event", "type": "charge.updated",
                                         "created": charge["created"], "api_version": "2025-03-31.basil",
                                         "data": {"object": charge}}).encode())
    assert (envelope.customer_id, envelope.subscription_id) == ("cus_1234", None)


# --- pre-2025: supabase's 2020-03-02 envelopes --------------------------------------------------------------

@pytest.mark.parametrize("name, subscription_id, period_end", [
    ("subscription_created", "sub_JdIzvfy6o5GZRd", 1625740918),
    ("subscription_updated", "sub_JLEPMp81LApOJl", 1621572344),
    ("subscription_deleted", "sub_JdIzvfy6o5GZRd", 1625740918),
])
def test_pre_basil_subscriptions_carry_their_period(samples, name, subscription_id, period_end):
    envelope = samples.envelope(name)
    assert envelope["api_version"] == "2020-03-02"
    assert ApiVersions(DEFAULT_STRIPE_API_VERSIONS).resolver(envelope["api_version"]) is PRE_BASIL
    subscription = envelope["data"]["object"]
    assert subscription["id"] == subscription_id
    assert PRE_BASIL.period_end(subscription) == period_end
    assert BASIL_FAMILY.period_end(subscription) is None  # its items carry no period
    assert PRE_BASIL.subscription_currency(subscription) == "USD"  # from the items: no top-level currency
    assert PRE_BASIL.discount_refs(subscription) == []  # `discount: null`


def test_pre_basil_subscription_items(samples):
    subscription = samples.envelope("subscription_created")["data"]["object"]
    free = Item(price_id="price_1IDQm5JDPojXS6LNM31hxKzp", quantity=1, unit_amount=0, currency="USD", interval="month",
                interval_count=1, tax_behavior=None, plan=None)
    # Two items; the second carries no quantity (one seat).
    assert PRE_BASIL.subscription_items(subscription) == [free, free]
    assert "quantity" not in subscription["items"]["data"][1]


@pytest.mark.parametrize("name, subscription_id", [
    ("invoice_paid", "sub_JsuPyCPhXWfZar"),
    ("invoice_voided", "sub_JsuPyCPhXWfZar"),
    ("invoice_finalized", "sub_K4J0aB2bmSyb6b"),
    ("invoice_updated", "sub_JW4ilEI1mm5j4X"),
    ("invoice_deleted", None),
])
def test_pre_basil_invoices_name_their_subscription_at_top_level(samples, name, subscription_id):
    invoice = samples.envelope(name)["data"]["object"]
    assert PRE_BASIL.invoice_subscription(invoice) == subscription_id
    assert BASIL_FAMILY.invoice_subscription(invoice) is None


def test_pre_basil_single_discount(samples):
    subscription = copy.deepcopy(samples.envelope("subscription_created")["data"]["object"])
    # A pre-2025 discount names its coupon directly: Stripe's own discount and coupon samples in that shape.
    discount = {**samples.resources["discount"], "coupon": samples.resources["coupon"]}
    del discount["source"]
    subscription["discount"] = discount
    assert PRE_BASIL.discount_refs(subscription) == [discount]
    assert BASIL_FAMILY.discount_refs(subscription) == []  # basil reads only `discounts`
    assert PRE_BASIL.coupon_of(discount)["id"] == "Z4OV52SU"
    assert forever_coupons(subscription, PRE_BASIL, Lookup()) == [Coupon(percent_off=Decimal("25.5"), amount_off=None)]


def test_pre_basil_schedule_phases(samples):
    schedule = samples.envelope("subscription_schedule_updated")["data"]["object"]
    phases = schedule["phases"]
    assert [PRE_BASIL.phase_items(phase)[0].price_id for phase in phases] == [
        "price_1IdYPAJDPojXS6LNRVCC1LAV"] * 3 + ["price_1KCawmJDPojXS6LNahIn31Mr"]
    # Phase items name their price by id: the amount comes from the catalog.
    assert PRE_BASIL.phase_items(phases[-1]) == [Item("price_1KCawmJDPojXS6LNahIn31Mr", 1, None, None, None, None, None)]


def test_pre_basil_discount_ids_use_the_discount_object_beside_them(samples):
    # 2023–2025 pre-basil subscriptions list their discounts by id and still expand the (first) one in
    # `discount`: that object serves when no archived event holds the discount.
    subscription = copy.deepcopy(samples.envelope("subscription_created")["data"]["object"])
    discount = {**samples.resources["discount"], "coupon": samples.resources["coupon"]}
    subscription.update(discounts=[discount["id"], "di_elsewhere"], discount=discount)
    assert PRE_BASIL.discount_refs(subscription) == [discount, "di_elsewhere"]
    assert forever_coupons({**subscription, "discounts": [discount["id"]]}, PRE_BASIL, Lookup()) == [
        Coupon(percent_off=Decimal("25.5"), amount_off=None)]
    with pytest.raises(MissingKnowledge, match="di_elsewhere"):  # the other one is known nowhere: not guessed
        forever_coupons(subscription, PRE_BASIL, Lookup())
    other = {"id": "di_elsewhere", "object": "discount", "coupon": {**samples.resources["coupon"], "percent_off": 10}}
    assert len(forever_coupons(subscription, PRE_BASIL, Lookup({"di_elsewhere": other}))) == 2


def test_a_plan_object_stands_in_for_an_unexpanded_price(samples):
    # Stripe's plan sample is the price of the subscription sample under its legacy name: its unit amount is
    # `amount`, not `unit_amount`.
    plan = samples.resources["plan"]
    subscription = {"id": "sub_1", "object": "subscription", "status": "active", "cancel_at_period_end": False,
                    "items": {"object": "list", "data": [{"id": "si_1", "price": plan["id"], "plan": plan, "quantity": 3}]}}
    assert PRE_BASIL.subscription_items(subscription) == [
        Item(price_id="price_1PgafmB7WZ01zgkW6dKueIc5", quantity=3, unit_amount=2000, currency="USD", interval="month",
             interval_count=1, tax_behavior=None, plan=None)]
    catalog = Catalog([], ("basis", "standard", "premium"))
    assert forward_mrr(subscription, None, catalog, PRE_BASIL, Lookup()) == Decimal("60.00")

"""Real Stripe payloads (DESIGN §9): supabase-stripe-sync-engine's event envelopes, captured from Stripe's test mode
in the pre-2025 shape (api_version 2020-03-02), signed with the configured secret and posted to the real webhook;
then linked to tenants and replayed. Every expected row below is worked out by hand from the payloads and §4.5.

The files are read from ../shared at test time; without them these tests are skipped with the reason.
"""
import json
import time
from collections import Counter
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from backoffice.billing.models import (
    PaymentTransaction,
    PlanPrice,
    StripeEvent,
    StripeEventDivergence,
    StripeEventState,
    Subscription,
    archived_with_states,
    effective_billing_events,
)
from backoffice.billing.replay.tasks import replay_all
from backoffice.extensions import db
from backoffice.jobs import in_process_runner
from backoffice.stripe_sandbox.webhooks import sign
from tests.factories import make_subscription, make_tenant
from tests.samples import load_samples

SECRET = "whsec_real_payloads"
PRE = "2020-03-02"
Z = Decimal("0.00")

# Each file's envelope fields, read by hand: type, created, api_version, customer id, subscription id.
ENVELOPES = {
    "charge_refunded": ("charge.refunded", 1619701111, PRE, "cus_J7Mkgr8mvbl1eK", None),
    "charge_succeeded": ("charge.succeeded", 1619701111, PRE, "cus_J7Mkgr8mvbl1eK", None),
    "credit_note_created": ("credit_note.created", 1642649422, PRE, "cus_NjLgPhUokHubJC", None),
    "credit_note_updated": ("credit_note.updated", 1642649422, PRE, "cus_NjLgPhUokHubJC", None),
    "credit_note_voided": ("credit_note.voided", 1642649422, PRE, "cus_NjLgPhUokHubJC", None),
    "customer_deleted": ("customer.deleted", 1619701111, PRE, "cus_IhGfebO16cMIGN", None),
    "customer_updated": ("customer.updated", 1619701111, PRE, "cus_IhGfebO16cMIGN", None),
    "invoice_deleted": ("invoice.deleted", 1689634585, "2020-08-27", "cus_123", None),
    "invoice_finalized": ("invoice.finalized", 1642599194, PRE, "cus_J7Mkgr8mvbl1eK", "sub_K4J0aB2bmSyb6b"),
    "invoice_paid": ("invoice.paid", 1642649111, PRE, "cus_JsuO3bmrj0QlAw", "sub_JsuPyCPhXWfZar"),
    "invoice_payment_paid": ("invoice_payment.paid", 1642649111, "2023-10-16", None, None),
    "invoice_updated": ("invoice.updated", 1642649422, PRE, "cus_JVhbiWW9p3F6wq", "sub_JW4ilEI1mm5j4X"),
    "invoice_voided": ("invoice.voided", 1642649111, PRE, "cus_JsuO3bmrj0QlAw", "sub_JsuPyCPhXWfZar"),
    "payment_method_attached": ("payment_method.attached", 1619697430, PRE, "cus_N4vaPItLFHBqRE", None),
    "payment_method_automatically_updated": ("payment_method.automatically_updated", 1619697430, PRE, "cus_Mt3...",
                                             None),
    "payment_method_detached": ("payment_method.detached", 1619697430, PRE, None, None),
    "payment_method_updated": ("payment_method.updated", 1619697430, PRE, "cus_Mt3...", None),
    "price_created": ("price.created", 1623149364, PRE, None, None),
    "product_created": ("product.created", 1623149335, PRE, None, None),
    "refund_created": ("refund.created", 1642649111, PRE, None, None),
    "refund_updated": ("refund.updated", 1642649111, PRE, None, None),
    "subscription_created": ("customer.subscription.created", 1623148918, PRE, "cus_IhGfebO16cMIGN", "sub_JdIzvfy6o5GZRd"),
    "subscription_deleted": ("customer.subscription.deleted", 1623149102, PRE, "cus_IhGfebO16cMIGN", "sub_JdIzvfy6o5GZRd"),
    "subscription_updated": ("customer.subscription.updated", 1619706820, PRE, "cus_IhGfebO16cMIGN", "sub_JLEPMp81LApOJl"),
    **{f"subscription_schedule_{name}": (f"subscription_schedule.{name}", 1623149102, PRE, "cus_J2KKjtkuVwFRoZ", None)
       for name in ("aborted", "canceled", "completed", "created", "expiring", "released", "updated")},
}
# The captures reuse event ids across files (one template edited per type); Stripe's ids are unique.
SHARED_IDS = {
    "evt_3KtQThJDPojXS6LN0E06aNxq": {"charge_refunded", "charge_succeeded"},
    "evt_1KJrLuJDPojXS6LNKLCh0CEr": {"credit_note_created", "credit_note_updated", "credit_note_voided",
                                     "invoice_updated"},
    "evt_1IlZRsJDPojXS6LN2AbFmnR4": {"customer_deleted", "customer_updated"},
    "evt_1KJrGtJDPojXS6LN15fcthM3": {"invoice_paid", "invoice_voided", "refund_created", "refund_updated"},
    "evt_1IlYUUJDPojXS6LN7NEWYSm2": {"payment_method_attached", "payment_method_automatically_updated",
                                     "payment_method_detached", "payment_method_updated"},
    "evt_1J02QdJDPojXS6LNnOJB09Xb": {"subscription_deleted", *(f"subscription_schedule_{name}" for name in (
        "aborted", "canceled", "completed", "created", "expiring", "released", "updated"))},
}
# The supabase customer with a subscription's whole life, and the others whose events get rows.
SUPABASE = "cus_IhGfebO16cMIGN"
LINKED = (SUPABASE, "cus_J7Mkgr8mvbl1eK", "cus_N4vaPItLFHBqRE", "cus_J2KKjtkuVwFRoZ")
FREE_PRICE = "price_1IDQm5JDPojXS6LNM31hxKzp"  # the subscriptions' price: 0 a month, no metadata.plan


@pytest.fixture(scope="module")
def samples():
    return load_samples()


@pytest.fixture(scope="module")
def originals(samples):
    """Every envelope as the files have it, by file stem."""
    return {stem: samples.envelope(stem) for stem in ENVELOPES}


@pytest.fixture(scope="module")
def envelopes(originals):
    """The envelopes with distinct ids: a shared id gets the file stem appended, the payload is untouched."""
    counts = Counter(envelope["id"] for envelope in originals.values())
    return {stem: {**envelope, "id": f"{envelope['id']}_{stem}"} if counts[envelope["id"]] > 1 else envelope
            for stem, envelope in originals.items()}


@pytest.fixture(scope="module")
def currency(originals):
    """The captures' currency, as the platform currency must be for their amounts to be ledgered."""
    return originals["subscription_created"]["data"]["object"]["items"]["data"][0]["price"]["currency"].upper()


@pytest.fixture
def post(client, settings, currency):
    settings(STRIPE_WEBHOOK_SECRETS=(SECRET,), PLATFORM_CURRENCY=currency)

    def deliver(envelope):
        body = json.dumps(envelope).encode()
        return client.post("/webhooks/stripe", data=body, headers={
            "Stripe-Signature": sign(body, SECRET, int(time.time())), "Content-Type": "application/json"})
    return deliver


def post_all(post, envelopes, stems=None):
    for stem in stems or sorted(envelopes):
        response = post(envelopes[stem])
        assert response.status_code == 200, (stem, response.get_data(as_text=True))
        assert response.get_json()["outcome"] == "stored", stem


def link(db_session, *customers):
    """A tenant and its subscription row for each customer (as the SaaS made them); return tenant ids."""
    tenants = {}
    for customer in customers:
        tenant = make_tenant(db_session, name=f"Tenant of {customer}")
        make_subscription(db_session, tenant_id=tenant.id, stripe_customer_id=customer)
        tenants[customer] = tenant.id
    db_session.commit()
    return tenants


def catalog_knows(db_session, envelopes):
    """Store every price the payloads expand, as Stripe would give it to the catalog: these name no plan."""
    from backoffice.billing.ledger.catalog import store_prices
    from backoffice.billing.replay.platform_events import price_from_payload

    prices: dict[str, dict] = {}

    def collect(value):
        if isinstance(value, dict):
            if value.get("object") == "price" and value.get("id"):
                prices[value["id"]] = value
            for inner in value.values():
                collect(inner)
        elif isinstance(value, list):
            for inner in value:
                collect(inner)

    collect([envelope["data"]["object"] for envelope in envelopes.values()])
    store_prices(db_session, [price_from_payload(price, None) for price in prices.values()])
    db_session.commit()
    return sorted(prices)


def drain(app):
    """Run the queued replays to the end, as a burst worker does; return their reports by customer."""
    runner = in_process_runner(app)
    queued = [job for _, job, _, _ in runner.deferred]
    with app.app_context():
        runner.run_deferred()
    return {job.result["customer"]: job.result for job in queued if isinstance(job.result, dict) and "customer" in job.result}


def ledger(db_session, tenant_id):
    view = effective_billing_events
    rows = db_session.execute(select(view).where(view.c.tenant_id == tenant_id)
                              .order_by(view.c.occurred_at, view.c.position, view.c.stripe_event_id)).all()
    return [(r.stripe_event_id, r.event_type, r.from_plan, r.to_plan, r.previous_amount, r.new_amount, r.amount_delta,
             r.committed_mrr, r.movement) for r in rows]


def info(event_id, event_type):
    """A row without amounts, of no plan (none of these customers has one as of it), committed MRR 0."""
    return (event_id, event_type, None, None, None, None, None, Z, None)


def statuses(db_session):
    db_session.expire_all()
    return {row.stripe_event_id: (row.status, row.error) for row in db_session.scalars(select(StripeEventState))}


def test_the_files_are_the_envelopes_listed_here(samples, originals):
    folder = samples.root / "stripe-fixtures" / "supabase-stripe-sync-engine"
    assert sorted(path.stem for path in folder.glob("*.json")) == sorted(ENVELOPES)
    ids: dict[str, set[str]] = {}
    for stem, envelope in originals.items():
        ids.setdefault(envelope["id"], set()).add(stem)
    assert {event_id: stems for event_id, stems in ids.items() if len(stems) > 1} == SHARED_IDS


def test_every_envelope_is_archived_once_with_its_envelope_fields(post, envelopes, db_session):
    post_all(post, envelopes)
    for stem in sorted(envelopes):  # Stripe's retries: acknowledged, stored once
        assert post(envelopes[stem]).get_json()["outcome"] == "duplicate", stem
    rows = db_session.scalars(select(StripeEvent)).all()
    assert len(rows) == len(ENVELOPES)
    archived = {row.id: (row.type, int(row.stripe_created_at.timestamp()), row.api_version, row.stripe_customer_id,
                         row.stripe_subscription_id) for row in rows}
    assert archived == {envelopes[stem]["id"]: fields for stem, fields in ENVELOPES.items()}
    by_id, states = {row.id: row for row in rows}, statuses(db_session)
    for stem, envelope in envelopes.items():
        assert (states[envelope["id"]][0], by_id[envelope["id"]].payload) == ("pending", envelope), stem
    assert db_session.scalar(select(func.count()).select_from(StripeEventDivergence)) == 0


def test_a_reused_id_keeps_the_first_body_and_the_other_aside(post, originals, db_session):
    updated, deleted = originals["customer_updated"], originals["customer_deleted"]
    assert updated["id"] == deleted["id"]
    assert post(updated).get_json()["outcome"] == "stored"
    assert post(deleted).get_json()["outcome"] == "divergent"
    assert db_session.get(StripeEvent, updated["id"]).type == "customer.updated"
    divergences = db_session.scalars(select(StripeEventDivergence)).all()
    assert [(d.stripe_event_id, d.payload["type"]) for d in divergences] == [(updated["id"], "customer.deleted")]


def test_without_the_catalog_or_stripe_the_customers_wait_and_nothing_is_written(post, envelopes, db_session, app):
    """No row on missing knowledge (DESIGN §4.6): a price nobody can look up leaves the events pending."""
    post_all(post, envelopes)
    tenants = link(db_session, *LINKED)
    reports = drain(app)
    assert reports[SUPABASE]["waiting"] and "price price_" in reports[SUPABASE]["reason"]
    assert ledger(db_session, tenants[SUPABASE]) == []
    waiting = db_session.scalars(select(StripeEventState.status).select_from(archived_with_states())
                                 .where(StripeEvent.stripe_customer_id == SUPABASE)).all()
    assert waiting and set(waiting) == {"pending"}
    # Once the catalog knows the prices, the same archive replays (as the pending sweeper's replay would).
    catalog_knows(db_session, envelopes)
    with app.app_context():
        assert replay_all([SUPABASE])["waiting"] == 0
    db_session.rollback()
    assert set(db_session.scalars(select(StripeEventState.status).select_from(archived_with_states())
                                      .where(StripeEvent.stripe_customer_id == SUPABASE))) == {
        "processed"}
    assert ledger(db_session, tenants[SUPABASE])


def test_replayed_without_a_catalog_plan_the_subscription_events_are_unclassified(post, envelopes, db_session, app):
    post_all(post, envelopes)
    tenants = link(db_session, *LINKED)
    catalog_knows(db_session, envelopes)
    reports = drain(app)
    event = {stem: envelope["id"] for stem, envelope in envelopes.items()}
    # 1619701111: customer.updated (previous email) then customer.deleted (precedence), no subscription yet:
    # billing info updated; suspended from no plan, 0 → 0. 1619706820: an update of another subscription
    # (previous: metadata) whose free price names no plan, and 1623148918: the creation on that price: both
    # Unclassified, committed MRR stays 0. 1623149102: deleted, not cancelling at period end, no
    # cancellation_details: immediately cancelled, to basis, 0 → 0.
    assert ledger(db_session, tenants[SUPABASE]) == [
        info(event["customer_updated"], "BillingInfoUpdated"),
        (event["customer_deleted"], "SubscriptionSuspended", None, "basis", Z, Z, Z, Z, None),
        info(event["subscription_updated"], "Unclassified"),
        info(event["subscription_created"], "Unclassified"),
        (event["subscription_deleted"], "SubscriptionImmediatelyCancelled", None, "basis", Z, Z, Z, Z, None),
    ]
    notes = {(note["kind"], note["event_id"]) for note in reports[SUPABASE]["notes"]}
    assert notes == {("UnclassifiedStripeEvent", event["subscription_updated"]),
                     ("UnclassifiedStripeEvent", event["subscription_created"])}
    suspended = db_session.execute(select(effective_billing_events.c.suspension_reason).where(
        effective_billing_events.c.stripe_event_id == event["customer_deleted"])).scalar_one()
    assert suspended == "customer_deleted"
    # charge.succeeded and invoice.finalized feed payments only; the refund gets its row, of no plan.
    assert ledger(db_session, tenants["cus_J7Mkgr8mvbl1eK"]) == [info(event["charge_refunded"], "PaymentRefunded")]
    assert ledger(db_session, tenants["cus_N4vaPItLFHBqRE"]) == [
        info(event["payment_method_attached"], "PaymentMethodUpdated")]
    # The schedule was already released in every capture: created and updated are trailing terminal updates,
    # released and canceled find no scheduled plan: NoOp each; completed, aborted and expiring get no row.
    assert ledger(db_session, tenants["cus_J2KKjtkuVwFRoZ"]) == [
        info(event[f"subscription_schedule_{name}"], "NoOp") for name in ("created", "updated", "canceled", "released")]

    expected = {}
    for stem, (_, _, _, customer, _) in ENVELOPES.items():
        if customer in LINKED or stem in ("price_created", "product_created"):  # the catalog takes those two
            expected[event[stem]] = "processed"
        else:
            expected[event[stem]] = "ignored"
    found = statuses(db_session)
    assert {event_id: status for event_id, (status, _) in found.items()} == expected
    for stem, (_, _, _, customer, _) in ENVELOPES.items():
        status, error = found[event[stem]]
        if status == "ignored":
            assert error and ("UnknownTenant" in error if customer else "no customer" in error), (stem, error)


def test_replayed_with_the_price_in_the_catalog_the_subscription_is_classified(post, envelopes, db_session, app):
    tenant = make_tenant(db_session, name="Copple")
    db_session.add(PlanPrice(id=FREE_PRICE, product_id="prod_Ip4vqwv3EJ7Mi0", plan="standard",
                             unit_amount=Decimal("25.00"), currency="USD", interval="month", interval_count=1, active=True))
    db_session.commit()
    stems = ("customer_updated", "customer_deleted", "subscription_updated", "subscription_created",
             "subscription_deleted")
    # Linked by the customer's metadata this time: the replay job makes the tenant's subscription row.
    customer = envelopes["customer_updated"]["data"]["object"]
    metadata = {**customer["metadata"], "tenant_id": tenant.id}
    with_tenant = {**envelopes, "customer_updated": {**envelopes["customer_updated"], "data": {
        **envelopes["customer_updated"]["data"], "object": {**customer, "metadata": metadata}}}}
    post_all(post, with_tenant, stems)
    reports = drain(app)
    event = {stem: envelopes[stem]["id"] for stem in stems}
    # As before, but the price's catalog plan classifies: the metadata update is NoOp (the same free amount,
    # and no subscription before it to name a plan), the creation is standard at 0 a month, and the deletion
    # leaves standard for basis. The payload's unit_amount (0) wins over the catalog's 25.00.
    assert ledger(db_session, tenant.id) == [
        info(event["customer_updated"], "BillingInfoUpdated"),
        (event["customer_deleted"], "SubscriptionSuspended", None, "basis", Z, Z, Z, Z, None),
        info(event["subscription_updated"], "NoOp"),
        (event["subscription_created"], "SubscriptionCreated", None, "standard", Z, Z, Z, Z, None),
        (event["subscription_deleted"], "SubscriptionImmediatelyCancelled", "standard", "basis", Z, Z, Z, Z, None),
    ]
    assert reports[SUPABASE]["notes"] == []
    assert reports[SUPABASE]["tenant"] == tenant.id
    linked = db_session.scalars(select(Subscription).where(Subscription.tenant_id == tenant.id)).one()
    assert linked.stripe_customer_id == SUPABASE
    assert set(statuses(db_session).values()) == {("processed", None)}


def test_amounts_in_another_currency_are_ledgered_in_it(post, envelopes, db_session, app, settings):
    """Stripe's USD captures on a EUR platform: handled like any other, the payment kept in USD (the reports
    convert it), nothing set aside."""
    settings(PLATFORM_CURRENCY="EUR")
    stems = ("charge_refunded", "charge_succeeded", "invoice_finalized")
    post_all(post, envelopes, stems)
    tenants = link(db_session, "cus_J7Mkgr8mvbl1eK")
    catalog_knows(db_session, envelopes)
    drain(app)
    found = statuses(db_session)
    assert {found[envelopes[stem]["id"]] for stem in stems} == {("processed", None)}
    rows = ledger(db_session, tenants["cus_J7Mkgr8mvbl1eK"])
    assert [row[1] for row in rows] == ["PaymentRefunded"]
    payments = db_session.execute(select(PaymentTransaction.currency, PaymentTransaction.refunded_amount)
                                  .where(PaymentTransaction.tenant_id == tenants["cus_J7Mkgr8mvbl1eK"])).all()
    assert payments and {currency for currency, _ in payments} == {"USD"}


def test_nothing_is_left_pending_or_failed(post, envelopes, db_session, app):
    post_all(post, envelopes)
    link(db_session, *LINKED)
    catalog_knows(db_session, envelopes)
    drain(app)
    with app.app_context():
        left = db.session.scalar(select(func.count()).select_from(StripeEventState)
                                 .where(StripeEventState.status.in_(("pending", "failed"))))
    assert left == 0
    assert all(error for status, error in statuses(db_session).values() if status == "ignored")

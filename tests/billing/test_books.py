"""Books that are right (issue 16) through the real webhook, the real SDK and the sandbox: one pricing for the
replay and verify, no row on missing knowledge, restatement by appended corrections, drift as rows are written.

Every expected amount is worked by hand from the prices the test creates.
"""
from __future__ import annotations

from sqlalchemy import func, select

from backoffice.billing.models import (
    BillingEvent,
    BillingEventCorrection,
    PaymentTransaction,
    StripeEvent,
    StripeEventState,
    Subscription,
    archived_with_states,
    effective_billing_events,
)
from backoffice.billing.replay.tasks import replay_all
from backoffice.demo.scenarios import SCENARIOS, Scenario
from backoffice.extensions import db
from backoffice.operators.models import Operator, OperatorAction
from backoffice.read_models.mrr_daily import compare
from tests.billing.harness import D, mrr_row

T = "ten_books"
ADMIN = "oid-books-admin"


def verify(app):
    result = app.test_cli_runner().invoke(args=["billing", "verify"])
    return result.exit_code, result.output


def admin(app):
    with app.app_context():
        db.session.add(Operator(id=ADMIN, name="Books admin", is_admin=True))
        db.session.commit()


def test_verify_prices_a_forever_coupon_as_the_replay_does(harness, app):
    """20 % forever off Standard (49.00): 39.20 a month, in the ledger, the projection and verify alike."""
    harness.tenant(T)
    SCENARIOS["forever_coupon"](harness.demo, T)
    harness.settle()
    assert harness.subscription(T).forward_mrr == D("39.20")
    assert ("SubscriptionCreated", None, "standard", D(0), D("39.20"), D("39.20"), D("39.20"), "new") in \
        harness.ledger(T)
    assert verify(app) == (0, "0 ledger difference(s), 0 payment difference(s)\n")


def test_verify_finds_a_payment_that_no_longer_follows_from_the_archive(harness, app):
    harness.tenant(T)
    SCENARIOS["renew"](harness.demo, T)
    harness.settle()
    with app.app_context():
        payment = db.session.scalars(select(PaymentTransaction).where(PaymentTransaction.tenant_id == T)).first()
        payment.plan, payment_id = None, payment.id
        db.session.commit()
    code, output = verify(app)
    assert code == 1
    assert f"{payment_id}: plan stored None, recomputed 'standard'" in output
    assert output.endswith("0 ledger difference(s), 1 payment difference(s)\n")


def test_a_scheduled_downgrade_waits_for_its_price_and_is_then_booked_right(harness, app, settings):
    """Schedule phases name their prices by id only. Without the catalog and without Stripe nothing is written
    (before, it was an Unclassified row); once Stripe answers, the downgrade is booked as scheduled."""
    key = app.config["STRIPE_SECRET_KEY"]
    harness.tenant(T)
    scenario = Scenario(harness.demo, "books", T)
    scenario.customer()
    scenario.subscribe("premium")
    scenario.schedule_downgrade("standard")
    settings(STRIPE_SECRET_KEY=None)
    harness.settle()
    with app.app_context():
        statuses = set(db.session.scalars(select(StripeEventState.status).select_from(archived_with_states())
                                   .where(StripeEventState.tenant_id.is_(None),
                                          StripeEvent.stripe_customer_id.is_not(None))))
        rows = db.session.scalar(select(func.count()).select_from(BillingEvent))
    assert statuses == {"pending"} and rows == 0
    waiting = harness.subscription(T)  # the account says why nothing is booked yet
    assert waiting.has_drift_detected
    assert [(d["kind"], d["expected"].split(" ")[0]) for d in waiting.drift_discrepancies] == [
        ("PricingKnowledgeMissing", "price")]
    settings(STRIPE_SECRET_KEY=key)
    with app.app_context():
        totals = replay_all()
    assert totals["waiting"] == 0 and totals["failed"] == 0
    ledger = harness.ledger(T, hide_noop=True)
    assert mrr_row("SubscriptionDowngradeScheduled", "premium", "standard", "99.00", "49.00", "contraction") in ledger
    assert all(row[0] != "Unclassified" for row in ledger)
    subscription = harness.subscription(T)
    assert (subscription.plan, subscription.scheduled_plan, subscription.forward_mrr) == ("premium", "standard",
                                                                                          D("49.00"))
    assert subscription.scheduled_price_amount == D("49.00") and not subscription.has_drift_detected
    assert verify(app)[0] == 0


def gold_without_plan(harness):
    """A 150.00 monthly price whose plan its product will name only later (product metadata, not the price's)."""
    client = harness.demo.client
    product = client.v1.products.create(params={"name": "Gold"})
    price = client.v1.prices.create(params={"product": product.id, "unit_amount": 15000, "currency": "eur",
                                            "recurring": {"interval": "month"}, "tax_behavior": "exclusive"})
    return product.id, price.id


def test_a_restatement_after_a_catalog_change_appends_corrections_and_is_idempotent(harness, app):
    harness.tenant(T)
    admin(app)
    product, price = gold_without_plan(harness)
    scenario = Scenario(harness.demo, "books", T)
    scenario.customer()
    created = scenario.step(lambda: harness.demo.client.v1.subscriptions.create(
        params={"customer": scenario.run.customer_id, "items": [{"price": price}]}))
    harness.settle()
    # Stripe says the price names no plan: Unclassified, and the drift flag is up as the row is written.
    subscription = harness.subscription(T)
    assert subscription.has_drift_detected
    assert {item["kind"] for item in subscription.drift_discrepancies} == {"UnclassifiedStripeEvent"}
    created_event = next(e["id"] for e in harness.delivered_events("customer.subscription.created")
                         if e["data"]["object"]["id"] == created.id)
    assert harness.row_of(created_event)[0] == "Unclassified"

    # The catalog learns the plan from the product; the stored rows now differ from a recomputation.
    harness.demo.client.v1.products.update(product, params={"metadata": {"plan": "premium"}})
    harness.settle()
    code, output = verify(app)
    assert code == 1 and f"{created_event}: event_type stored 'Unclassified', recomputed 'SubscriptionCreated'" in output
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["billing", "restate", "--dry-run"])
    assert dry.exit_code == 0 and "dry run: " in dry.output and created_event in dry.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(BillingEventCorrection)) == 0
    unaudited = runner.invoke(args=["billing", "restate"])
    assert unaudited.exit_code != 0 and "--operator and --reason" in unaudited.output

    done = runner.invoke(args=["billing", "restate", "--operator", ADMIN, "--reason", "Gold's plan learned late"])
    assert done.exit_code == 0, done.output
    with app.app_context():
        action = db.session.scalars(select(OperatorAction).where(OperatorAction.action == "restate")).one()
        causes = set(db.session.scalars(select(BillingEventCorrection.caused_by)))
        assert action.reason == "Gold's plan learned late" and action.result["customers"] == [
            scenario.run.customer_id]
        assert causes == {f"restatement:{action.id}"}
        assert compare(db.session, "EUR") == []  # mrr_daily followed the corrections
        stored = db.session.scalar(select(func.count()).select_from(BillingEvent))
        corrections = db.session.scalar(select(func.count()).select_from(BillingEventCorrection))
    assert harness.row_of(created_event) == mrr_row("SubscriptionCreated", None, "premium", "0", "150.00", "new")
    subscription = harness.subscription(T)
    assert (subscription.plan, subscription.forward_mrr, subscription.has_drift_detected) == ("premium",
                                                                                             D("150.00"), False)
    with app.app_context():
        plans = set(db.session.scalars(select(PaymentTransaction.plan).where(PaymentTransaction.tenant_id == T)))
        corrected = db.session.scalar(select(func.count()).where(effective_billing_events.c.corrected))
    assert plans == {"premium"} and corrected >= 1
    assert verify(app)[0] == 0

    again = runner.invoke(args=["billing", "restate", "--operator", ADMIN, "--reason", "once more"])
    assert again.exit_code == 0 and "0 correction(s) appended for 0 customer(s)" in again.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(BillingEventCorrection)) == corrections
        assert db.session.scalar(select(func.count()).where(OperatorAction.action == "restate")) == 1
        assert db.session.scalar(select(func.count()).select_from(BillingEvent)) == stored


def test_the_account_page_restates_for_an_admin_only_with_a_reason(harness, app, client, settings, admin_headers,
                                                                  operator_headers):
    settings(PUBLIC_SUBSCRIPTION_ENABLED=True)
    harness.tenant(T)
    product, price = gold_without_plan(harness)
    scenario = Scenario(harness.demo, "books", T)
    scenario.customer()
    scenario.step(lambda: harness.demo.client.v1.subscriptions.create(
        params={"customer": scenario.run.customer_id, "items": [{"price": price}]}))
    harness.settle()
    harness.demo.client.v1.products.update(product, params={"metadata": {"plan": "premium"}})
    harness.settle()
    url = f"/accounts/{T}"
    assert 'data-testid="restate-form"' not in client.get(url, headers=operator_headers).get_data(as_text=True)
    page = client.get(url, headers=admin_headers).get_data(as_text=True)
    assert 'data-testid="restate-form"' in page
    token = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    post = {**admin_headers, "X-CSRFToken": token}
    assert client.post(f"{url}/restate", headers={**operator_headers, "X-CSRFToken": token},
                       data={"reason": "not mine"}).status_code == 403
    assert client.post(f"{url}/restate", headers=admin_headers, data={"reason": "no token"}).status_code == 400
    no_reason = client.post(f"{url}/restate", headers=post, data={"reason": " "}, follow_redirects=True)
    assert "Give a reason for the restatement" in no_reason.get_data(as_text=True)
    done = client.post(f"{url}/restate", headers=post, data={"reason": "plan learned late"})
    assert done.status_code == 303
    assert "Restated: " in client.get(url, headers=admin_headers).get_data(as_text=True)
    assert harness.subscription(T).forward_mrr == D("150.00")
    with app.app_context():
        assert db.session.scalar(select(func.count()).where(OperatorAction.action == "restate",
                                                            OperatorAction.target_tenant_id == T)) == 1
        assert db.session.scalar(select(func.count()).where(Subscription.tenant_id == T,
                                                            Subscription.has_drift_detected)) == 0
    again = client.post(f"{url}/restate", headers=post, data={"reason": "again"})
    assert again.status_code == 303
    assert "Nothing to restate" in client.get(url, headers=admin_headers).get_data(as_text=True)

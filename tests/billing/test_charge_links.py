"""A refund nets against the invoice its charge paid, also when the archive cannot say which (DESIGN §4.10).

Basil-era charges no longer name their invoice; the invoice_payment.paid event does. When that event never
arrived, the replay asks Stripe (the sandbox, through the gateway); never when the archive answers.
"""
import logging

from sqlalchemy import select

from backoffice.billing.models import PaymentTransaction, StripeEventState
from backoffice.billing.replay.tasks import refresh_catalog
from backoffice.demo.scenarios import SCENARIOS
from backoffice.extensions import db
from tests.billing.harness import D

T = "ten_charge_links"
STRIPE_READS = ("GET /v1/charges/{charge_id}", "GET /v1/invoice_payments", "GET /v1/invoices")


def without_invoice_payments(batch):
    return [received for received in batch if received.event["type"] != "invoice_payment.paid"]


def partial_refund(harness):
    harness.tenant(T)
    run = SCENARIOS["partial_refund"](harness.demo, T)
    refunded = harness.delivered_events("charge.refunded")
    assert refunded and all(e["data"]["object"].get("invoice") is None for e in refunded)  # basil: no link
    return run


def stripe_reads(harness):
    return {route: harness.sandbox.request_counts[route] for route in STRIPE_READS}


def payment(harness):
    with harness.app.app_context():
        row = db.session.scalars(select(PaymentTransaction).where(PaymentTransaction.tenant_id == T)).one()
        return row.id, row.status, row.refunded_amount, row.refunded_at is not None


def statuses(harness):
    with harness.app.app_context():
        return set(db.session.scalars(select(StripeEventState.status)))


def test_a_refund_whose_charge_the_archive_cannot_tie_nets_against_its_invoice_through_stripe(harness):
    run = partial_refund(harness)
    before = stripe_reads(harness)
    harness.settle(without_invoice_payments)
    after = stripe_reads(harness)

    # a quarter of 123.75 (30.93) back, ex-VAT at 99/123.75
    invoice_id, *refund = payment(harness)
    assert refund == ["succeeded", D("24.74"), True]
    assert statuses(harness) == {"processed"}
    # The charge, then its customer's invoices with their payments (the sandbox pays without PaymentIntents).
    assert {route: after[route] - before[route] for route in STRIPE_READS} == {
        "GET /v1/charges/{charge_id}": 1, "GET /v1/invoice_payments": 0, "GET /v1/invoices": 1}
    paid = harness.demo.client.v1.invoice_payments.list(params={"invoice": invoice_id}).data[0]
    assert paid.payment.charge == run.objects["charge"]


def test_stripe_is_not_asked_when_the_archive_ties_the_charge(harness):
    partial_refund(harness)
    before = stripe_reads(harness)
    harness.settle()
    assert payment(harness)[1:] == ("succeeded", D("24.74"), True)
    assert stripe_reads(harness) == before


def test_without_stripe_the_refund_stays_unlinked_and_the_replay_goes_on(harness, settings, caplog):
    partial_refund(harness)
    with harness.app.app_context():
        refresh_catalog()  # the prices are known; only the charge's invoice cannot be asked for
    settings(STRIPE_SECRET_KEY=None)
    with caplog.at_level(logging.WARNING, logger="backoffice.billing.replay"):
        harness.settle(without_invoice_payments)
    assert payment(harness)[1:] == ("succeeded", D("0.00"), False)
    assert statuses(harness) == {"processed"}
    assert any("names no invoice in the archive and Stripe is not configured" in r.getMessage() for r in caplog.records)

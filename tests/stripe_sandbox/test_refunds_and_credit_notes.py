"""Refunds (full, partial) and credit notes (pre- and post-payment, refund or balance credit, void)."""
import pytest
import stripe

from tests.stripe_sandbox.billing_helpers import (
    EventTail,
    make_customer,
    previous,
    single_instant,
    subscribe,
    types,
)
from tests.stripe_sandbox.conftest import START


@pytest.fixture
def paid_invoice(stripe_client, premium):
    """A paid first invoice: 9900 + 25 % VAT = 12375, charged to a Visa card."""
    sub = subscribe(stripe_client, make_customer(stripe_client), premium)
    return stripe_client.v1.invoices.retrieve(sub.latest_invoice)


@pytest.fixture
def open_invoice(stripe_client, premium):
    """An open first invoice of 12375 whose charge was declined (its subscription is incomplete)."""
    sub = subscribe(stripe_client, make_customer(stripe_client, card="pm_card_chargeCustomerFail"), premium)
    return stripe_client.v1.invoices.retrieve(sub.latest_invoice)


def charge_of(client, invoice):
    payment = client.v1.invoice_payments.list(params={"invoice": invoice.id}).data[0]
    return client.v1.charges.retrieve(payment.payment.charge)


def test_a_full_refund(stripe_client, paid_invoice):
    charge = charge_of(stripe_client, paid_invoice)
    tail = EventTail(stripe_client)

    refund = stripe_client.v1.refunds.create(params={"charge": charge.id, "reason": "requested_by_customer",
                                                     "metadata": {"ticket": "T-1"}})

    assert (refund.amount, refund.status, refund.charge, refund.reason, refund.currency) == (
        12375, "succeeded", charge.id, "requested_by_customer", "eur")
    assert refund.metadata.to_dict() == {"ticket": "T-1"}
    events = tail.read()
    # refund.created, then charge.refunded with the charge's old refund fields.
    assert types(events) == ["refund.created", "charge.refunded"]
    single_instant(events)
    assert previous(events[1]) == {"amount_refunded": 0, "refunded": False, "refunds": {"data": []}}
    refunded = stripe_client.v1.charges.retrieve(charge.id)
    assert (refunded.amount_refunded, refunded.refunded, [r.id for r in refunded.refunds.data]) == (
        12375, True, [refund.id])
    assert stripe_client.v1.refunds.retrieve(refund.id).amount == 12375
    assert [r.id for r in stripe_client.v1.refunds.list(params={"charge": charge.id}).auto_paging_iter()] == [
        refund.id]
    assert stripe_client.v1.invoices.retrieve(paid_invoice.id).status == "paid"  # a refund leaves the invoice


def test_partial_refunds_up_to_the_charge(stripe_client, paid_invoice):
    charge = charge_of(stripe_client, paid_invoice)
    first = stripe_client.v1.refunds.create(params={"charge": charge.id, "amount": 5000})
    tail = EventTail(stripe_client)

    with pytest.raises(stripe.InvalidRequestError) as too_much:
        stripe_client.v1.refunds.create(params={"charge": charge.id, "amount": 8000})
    assert (too_much.value.code, too_much.value.param) == ("amount_too_large", "amount")
    rest = stripe_client.v1.refunds.create(params={"charge": charge.id})

    assert rest.amount == 7375
    events = tail.read()
    assert types(events) == ["refund.created", "charge.refunded"]
    assert previous(events[1])["amount_refunded"] == 5000 and previous(events[1])["refunded"] is False
    assert [r["id"] for r in previous(events[1])["refunds"]["data"]] == [first.id]
    with pytest.raises(stripe.InvalidRequestError) as done:
        stripe_client.v1.refunds.create(params={"charge": charge.id})
    assert done.value.code == "charge_already_refunded"


def test_refund_requests_are_checked(stripe_client, open_invoice):
    failed = charge_of(stripe_client, open_invoice)
    with pytest.raises(stripe.InvalidRequestError, match="has not succeeded"):
        stripe_client.v1.refunds.create(params={"charge": failed.id})
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.refunds.create(params={})
    assert missing.value.param == "charge"
    with pytest.raises(stripe.InvalidRequestError) as intent:
        stripe_client.v1.refunds.create(params={"payment_intent": "pi_123"})
    assert intent.value.param == "payment_intent"


def test_a_pre_payment_credit_note_lowers_the_amount_due_until_voided(stripe_client, open_invoice):
    line = open_invoice.lines.data[0]
    tail = EventTail(stripe_client)

    note = stripe_client.v1.credit_notes.create(params={
        "invoice": open_invoice.id, "reason": "order_change", "memo": "Goodwill",
        "lines": [{"type": "invoice_line_item", "invoice_line_item": line.id, "amount": 4000}]})

    assert (note.type, note.status, note.reason, note.memo) == ("pre_payment", "issued", "order_change", "Goodwill")
    # 4000 of the 9900 line, with its share of the VAT (1000).
    assert (note.subtotal, note.total_excluding_tax, note.total, note.amount) == (4000, 4000, 5000, 5000)
    assert (note.pre_payment_amount, note.post_payment_amount, note.refunds) == (5000, 0, [])
    assert [(t.amount, t.taxable_amount) for t in note.total_taxes] == [(1000, 4000)]
    assert note.lines.data[0].invoice_line_item == line.id
    assert note.number == f"{open_invoice.number}-CN-01" and note.pdf.endswith(f"{note.id}/pdf")
    events = tail.read()
    assert types(events) == ["credit_note.created", "invoice.updated"]
    assert previous(events[1]) == {"amount_due": 12375, "amount_remaining": 12375,
                                   "pre_payment_credit_notes_amount": 0}
    assert stripe_client.v1.invoices.retrieve(open_invoice.id).amount_due == 7375

    voided = stripe_client.v1.credit_notes.void_credit_note(note.id)

    assert (voided.status, voided.voided_at) == ("void", START)
    events = tail.read()
    # credit_note.voided (status and voided_at in previous_attributes), then the invoice asks for it all again.
    assert types(events) == ["credit_note.voided", "invoice.updated"]
    assert previous(events[0]) == {"status": "issued", "voided_at": None}
    assert previous(events[1])["amount_due"] == 7375
    assert stripe_client.v1.invoices.retrieve(open_invoice.id).amount_due == 12375
    with pytest.raises(stripe.InvalidRequestError, match="already void"):
        stripe_client.v1.credit_notes.void_credit_note(note.id)


def test_a_pre_payment_credit_note_for_everything_settles_the_invoice(stripe_client, open_invoice):
    tail = EventTail(stripe_client)

    stripe_client.v1.credit_notes.create(params={"invoice": open_invoice.id, "amount": 12375})

    # Nothing left to pay: the invoice is paid (no payment), and its subscription becomes active.
    assert types(tail.read()) == ["credit_note.created", "invoice.updated", "invoice.paid",
                                  "customer.subscription.updated"]
    invoice = stripe_client.v1.invoices.retrieve(open_invoice.id)
    assert (invoice.status, invoice.amount_remaining, invoice.pre_payment_credit_notes_amount) == ("paid", 0, 12375)


def test_a_post_payment_credit_note_with_a_refund(stripe_client, paid_invoice):
    line = paid_invoice.lines.data[0]
    tail = EventTail(stripe_client)

    note = stripe_client.v1.credit_notes.create(params={
        "invoice": paid_invoice.id, "refund_amount": 12375, "reason": "product_unsatisfactory",
        "lines": [{"type": "invoice_line_item", "invoice_line_item": line.id, "quantity": 1}]})

    assert (note.type, note.total, note.post_payment_amount, note.customer_balance_transaction) == (
        "post_payment", 12375, 12375, None)
    events = tail.read()
    # The refund first (refund.created, charge.refunded), then credit_note.created and the invoice's update.
    assert types(events) == ["refund.created", "charge.refunded", "credit_note.created", "invoice.updated"]
    assert previous(events[-1]) == {"post_payment_credit_notes_amount": 0}
    refund = events[0].data.object
    assert note.refunds[0].to_dict() == {"amount_refunded": 12375, "payment_record_refund": None,
                                         "refund": refund.id, "type": "refund"}
    assert charge_of(stripe_client, paid_invoice).refunded is True
    with pytest.raises(stripe.InvalidRequestError, match="refund cannot be undone"):
        stripe_client.v1.credit_notes.void_credit_note(note.id)


def test_a_post_payment_credit_note_to_the_balance_then_voided(stripe_client, paid_invoice):
    tail = EventTail(stripe_client)

    note = stripe_client.v1.credit_notes.create(params={"invoice": paid_invoice.id, "amount": 5000,
                                                        "credit_amount": 5000})

    events = tail.read()
    # The credit goes to the customer's balance (customer.updated), then credit_note.created, invoice.updated.
    assert types(events) == ["customer.updated", "credit_note.created", "invoice.updated"]
    assert previous(events[0]) == {"balance": 0}
    assert note.customer_balance_transaction is not None
    assert stripe_client.v1.customers.retrieve(paid_invoice.customer).balance == -5000

    stripe_client.v1.credit_notes.void_credit_note(note.id)

    # Voiding takes the credit back.
    assert types(tail.read()) == ["credit_note.voided", "customer.updated", "invoice.updated"]
    assert stripe_client.v1.customers.retrieve(paid_invoice.customer).balance == 0
    invoice = stripe_client.v1.invoices.retrieve(paid_invoice.id)
    assert invoice.post_payment_credit_notes_amount == 0


def test_out_of_band_credit_and_the_rest_as_balance_credit_and_listing(stripe_client, paid_invoice):
    first = stripe_client.v1.credit_notes.create(params={"invoice": paid_invoice.id, "amount": 3000,
                                                         "out_of_band_amount": 1000})
    second = stripe_client.v1.credit_notes.create(params={"invoice": paid_invoice.id, "amount": 2000,
                                                          "out_of_band_amount": 2000})

    assert (first.out_of_band_amount, first.refunds) == (1000, [])
    assert first.customer_balance_transaction is not None  # the 2000 not given otherwise became credit
    assert second.customer_balance_transaction is None
    assert (first.number[-5:], second.number[-5:]) == ("CN-01", "CN-02")
    listed = stripe_client.v1.credit_notes.list(params={"invoice": paid_invoice.id, "limit": 1})
    assert [n.id for n in listed.auto_paging_iter()] == [second.id, first.id]
    assert stripe_client.v1.credit_notes.retrieve(first.id).total == 3000
    assert stripe_client.v1.invoices.retrieve(paid_invoice.id).post_payment_credit_notes_amount == 5000


def test_credit_note_requests_are_checked(stripe_client, paid_invoice, open_invoice):
    cases = [
        ({"invoice": paid_invoice.id, "amount": 20000}, "amount"),
        ({"invoice": open_invoice.id, "amount": 1000, "refund_amount": 1000}, "refund_amount"),
        ({"invoice": paid_invoice.id, "amount": 1000, "refund_amount": 1000, "credit_amount": 500}, "refund_amount"),
        ({"invoice": paid_invoice.id, "lines": [{"type": "invoice_line_item", "invoice_line_item": "il_nope"}]},
         "lines[0][invoice_line_item]"),
        ({"invoice": paid_invoice.id}, "lines"),
    ]
    for params, param in cases:
        with pytest.raises(stripe.InvalidRequestError) as error:
            stripe_client.v1.credit_notes.create(params=params)
        assert error.value.param == param, params
    stripe_client.v1.invoices.void_invoice(open_invoice.id)
    with pytest.raises(stripe.InvalidRequestError, match="open or paid"):
        stripe_client.v1.credit_notes.create(params={"invoice": open_invoice.id, "amount": 100})

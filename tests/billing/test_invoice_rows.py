"""The dual-row invoice projection (reference §6) and its agreement with lifetime value (DESIGN §4.10)."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from backoffice.billing.ledger.revenue import lifetime_value
from backoffice.billing.lists import invoices
from backoffice.billing.models import PaymentTransaction
from tests.factories import OCCURRED_AT, make_subscription, make_tenant, payment_values

DAY = timedelta(days=1)


@pytest.fixture
def subscription(db_session):
    return make_subscription(db_session, tenant_id=make_tenant(db_session, name="Invoiced").id)


def pay(session, subscription, **overrides):
    row = PaymentTransaction(**payment_values(subscription, **overrides))
    session.add(row)
    session.flush()
    return row


def rows(session, subscription, **criteria):
    page = invoices.list_invoice_rows(session, invoices.InvoiceFilter(tenant_id=subscription.tenant_id, **criteria),
                                      per_page=100)
    return [(row.kind, row.status, row.date, row.amount) for row in page.rows]


def test_a_paid_invoice_is_one_row(db_session, subscription):
    pay(db_session, subscription)
    assert rows(db_session, subscription) == [("invoice", "succeeded", OCCURRED_AT, Decimal("49.00"))]


def test_a_refund_without_credit_note_is_a_refund_row_and_the_invoice_keeps_its_outcome(db_session, subscription):
    pay(db_session, subscription, status="refunded", refunded_at=OCCURRED_AT + 3 * DAY, refunded_amount=Decimal("49.00"))
    assert rows(db_session, subscription) == [
        ("refund", "refunded", OCCURRED_AT + 3 * DAY, Decimal("-49.00")),
        ("invoice", "succeeded", OCCURRED_AT, Decimal("49.00")),
    ]


def test_a_partial_refund_keeps_the_invoice_paid_and_shows_the_part(db_session, subscription):
    pay(db_session, subscription, refunded_at=OCCURRED_AT + DAY, refunded_amount=Decimal("10.00"))
    assert rows(db_session, subscription)[0] == ("refund", "refunded", OCCURRED_AT + DAY, Decimal("-10.00"))


def test_a_credit_note_is_a_credit_note_row_on_its_own_day(db_session, subscription):
    pay(db_session, subscription, credit_note_url="https://files.example/cn.pdf", credit_noted_at=OCCURRED_AT + 2 * DAY,
        refunded_at=OCCURRED_AT + 5 * DAY, credited_amount=Decimal("20.00"))
    assert rows(db_session, subscription) == [
        ("credit_note", "refunded", OCCURRED_AT + 2 * DAY, Decimal("-20.00")),
        ("invoice", "succeeded", OCCURRED_AT, Decimal("49.00")),
    ]


def test_a_credit_note_without_its_own_date_falls_back_to_the_refund_then_the_payment(db_session, subscription):
    pay(db_session, subscription, credit_note_url="https://files.example/a.pdf", refunded_at=OCCURRED_AT + DAY,
        credited_amount=Decimal("49.00"), id="in_a")
    pay(db_session, subscription, credit_note_url="https://files.example/b.pdf", credited_amount=Decimal("49.00"),
        id="in_b", date=OCCURRED_AT - 10 * DAY)
    dated = {(row.transaction_id, row.kind): row.date for row in invoices.list_invoice_rows(
        db_session, invoices.InvoiceFilter(tenant_id=subscription.tenant_id)).rows}
    assert dated[("in_a", "credit_note")] == OCCURRED_AT + DAY
    assert dated[("in_b", "credit_note")] == dated[("in_b", "invoice")] == OCCURRED_AT - 10 * DAY


def test_legacy_refund_without_dates_gives_two_rows_at_the_payment_date(db_session, subscription):
    pay(db_session, subscription, status="refunded", refunded_amount=Decimal("49.00"))
    assert sorted((kind, date) for kind, _, date, _ in rows(db_session, subscription)) == [
        ("invoice", OCCURRED_AT), ("refund", OCCURRED_AT)]


def test_kinds_filter_and_rows_sort_by_their_own_dates(db_session, subscription):
    pay(db_session, subscription, id="in_old", date=OCCURRED_AT - 40 * DAY, status="refunded",
        refunded_at=OCCURRED_AT + DAY, refunded_amount=Decimal("49.00"))
    pay(db_session, subscription, id="in_new", date=OCCURRED_AT)
    pay(db_session, subscription, id="in_failed", date=OCCURRED_AT - DAY, status="failed",
        failure_reason="Payment failed.")
    assert [kind for kind, *_ in rows(db_session, subscription)] == ["refund", "invoice", "invoice", "invoice"]
    assert [kind for kind, *_ in rows(db_session, subscription, kind="invoices")] == ["invoice"] * 3
    assert [kind for kind, *_ in rows(db_session, subscription, kind="reversals")] == ["refund"]
    ascending = invoices.list_invoice_rows(db_session, invoices.InvoiceFilter(tenant_id=subscription.tenant_id),
                                           descending=False).rows
    assert [row.key for row in ascending] == ["in_old:invoice", "in_failed:invoice", "in_new:invoice", "in_old:refund"]


def test_counted_rows_sum_to_lifetime_value_with_partial_refunds_and_credit_notes(db_session, subscription):
    pay(db_session, subscription, id="in_1")
    pay(db_session, subscription, id="in_2", refunded_at=OCCURRED_AT + DAY, refunded_amount=Decimal("12.50"))
    pay(db_session, subscription, id="in_3", credit_note_url="https://files.example/3.pdf",
        credit_noted_at=OCCURRED_AT + DAY, credited_amount=Decimal("7.25"))
    pay(db_session, subscription, id="in_4", status="refunded", refunded_at=OCCURRED_AT + DAY,
        refunded_amount=Decimal("49.00"))
    pay(db_session, subscription, id="in_5", status="failed")
    totals = invoices.invoice_totals(db_session, invoices.InvoiceFilter(tenant_id=subscription.tenant_id))
    expected = Decimal("49.00") * 4 - Decimal("12.50") - Decimal("7.25") - Decimal("49.00")
    assert totals == {"EUR": invoices.Totals(expected)}
    assert lifetime_value(db_session, "EUR", subscription.tenant_id) == expected
    by_kind = {kind: invoices.invoice_totals(db_session, invoices.InvoiceFilter(tenant_id=subscription.tenant_id,
                                                                                kind=kind))
               for kind in invoices.KINDS}
    assert by_kind == {"invoices": {"EUR": invoices.Totals(Decimal("196.00"))},
                       "reversals": {"EUR": invoices.Totals(Decimal("-68.75"))}}


def test_the_rows_follow_a_payment_refunded_then_credited_later(db_session, subscription):
    """The projection is kept by the database: a payment's later refund and credit note re-project its rows."""
    from sqlalchemy import update

    payment = pay(db_session, subscription)
    db_session.execute(update(PaymentTransaction).where(PaymentTransaction.id == payment.id).values(
        status="refunded", refunded_at=OCCURRED_AT + 3 * DAY, refunded_amount=Decimal("49.00")))
    assert rows(db_session, subscription) == [
        ("refund", "refunded", OCCURRED_AT + 3 * DAY, Decimal("-49.00")),
        ("invoice", "succeeded", OCCURRED_AT, Decimal("49.00")),
    ]
    db_session.execute(update(PaymentTransaction).where(PaymentTransaction.id == payment.id).values(
        credit_note_url="https://files.example/cn.pdf", credit_noted_at=OCCURRED_AT + 4 * DAY))
    assert rows(db_session, subscription) == [
        ("credit_note", "refunded", OCCURRED_AT + 4 * DAY, Decimal("-49.00")),
        ("invoice", "succeeded", OCCURRED_AT, Decimal("49.00")),
    ]
    assert invoices.invoice_totals(db_session, invoices.InvoiceFilter(tenant_id=subscription.tenant_id)) == {
        "EUR": invoices.Totals(Decimal("0.00"))}


def test_a_deleted_accounts_rows_leave_the_list_but_stay_in_its_total_apart(db_session, subscription):
    from backoffice.accounts.models import Tenant
    from tests.factories import OCCURRED_AT as deleted_at

    other = make_subscription(db_session, tenant_id=make_tenant(db_session, name="Gone").id)
    pay(db_session, subscription)
    pay(db_session, other)
    every = invoices.InvoiceFilter()
    assert invoices.invoice_totals(db_session, every) == {"EUR": invoices.Totals(Decimal("98.00"))}
    db_session.get(Tenant, other.tenant_id).deleted_at = deleted_at
    db_session.flush()
    assert [row.tenant_name for row in invoices.list_invoice_rows(db_session, every).rows] == ["Invoiced"]
    totals = invoices.invoice_totals(db_session, every)["EUR"]
    assert (totals.listed, totals.deleted, totals.deleted_accounts, totals.amount) == (
        Decimal("49.00"), Decimal("49.00"), 1, Decimal("98.00"))
    # A filter applies to the deleted accounts' share as it does to the listed rows.
    gone = invoices.invoice_totals(db_session, invoices.InvoiceFilter(search="Gon"))["EUR"]
    assert (gone.listed, gone.deleted, gone.deleted_accounts) == (Decimal("0.00"), Decimal("49.00"), 1)

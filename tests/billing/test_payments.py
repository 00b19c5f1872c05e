"""Payment transactions from each money scenario, end to end through the webhook (DESIGN §4.10, reference §5).

The demo customer is Danish: 25 % VAT on top of the ex-VAT price (standard 49.00, premium 99.00)."""
import pytest
from sqlalchemy import select

from backoffice.billing.models import PaymentTransaction
from backoffice.demo.scenarios import SCENARIOS
from backoffice.extensions import db
from tests.billing.harness import D

T = "ten_payments"


def payments(harness):
    with harness.app.app_context():
        rows = db.session.scalars(select(PaymentTransaction).where(PaymentTransaction.tenant_id == T)
                                  .order_by(PaymentTransaction.date, PaymentTransaction.id)).all()
        return [(p.status, p.plan, p.amount, p.amount_excluding_tax, p.tax_amount, p.invoice_total,
                 p.refunded_amount, p.credited_amount, p.refunded_at is not None, p.credit_noted_at is not None)
                for p in rows]


def paid(plan, ex_vat, status="succeeded", refunded=0, credited=0, refunded_at=False, credited_at=False):
    ex_vat = D(ex_vat)
    tax = D(ex_vat * D("0.25"))
    return (status, plan, ex_vat + tax, ex_vat, tax, ex_vat + tax, D(refunded), D(credited), refunded_at, credited_at)


@pytest.mark.parametrize("api_version", [None, "2020-03-02"], ids=["basil", "2020-03-02"])
@pytest.mark.parametrize("name, expected", [
    ("subscribe", [paid("standard", 49)]),
    ("renew", [paid("standard", 49), paid("standard", 49)]),
    ("full_refund", [paid("premium", 99, status="refunded", refunded=99, refunded_at=True)]),
    # a quarter of 123.75 (30.93) back, ex-VAT at 99/123.75
    ("partial_refund", [paid("premium", 99, refunded="24.74", refunded_at=True)]),
    # half of 61.25 (30.62) credited and refunded: counted once, as credit, ex-VAT at 49/61.25
    ("credit_note_with_refund", [paid("standard", 49, credited="24.50", credited_at=True, refunded_at=True)]),
    ("credit_note_then_void", [paid("standard", 49)]),
])
def test_payments_of_a_scenario(harness_factory, name, expected, api_version):
    harness = harness_factory(api_version=api_version)
    harness.tenant(T)
    SCENARIOS[name](harness.demo, T)
    harness.settle()
    assert payments(harness) == expected


def test_a_proration_invoice_takes_the_plan_of_its_largest_line(harness):
    harness.tenant(T)
    SCENARIOS["upgrade_with_proration"](harness.demo, T)
    harness.settle()
    plans = [row[1] for row in payments(harness)]
    assert plans == ["standard", "premium"]


def test_failed_payments_are_recorded_and_the_suspended_account_keeps_them(harness):
    harness.tenant(T)
    SCENARIOS["payment_failed_then_suspended"](harness.demo, T)
    harness.settle()
    statuses = [row[0] for row in payments(harness)]
    assert statuses[0] == "succeeded" and statuses[-1] in ("failed", "pending")
    subscription = harness.subscription(T)
    assert subscription.account_status == "canceled"  # once paid, now on the free plan
    with harness.app.app_context():
        from backoffice.accounts.models import Tenant

        tenant = db.session.get(Tenant, T)
        assert (tenant.state, tenant.suspension_reason, tenant.plan) == ("suspended", "payment_failed", "basis")

"""The subscription projection after each lifecycle, field by field (DESIGN §3, reference §5–§6)."""
from datetime import UTC, datetime

import pytest

from backoffice.accounts.models import Tenant
from backoffice.demo.scenarios import SCENARIOS, Scenario
from backoffice.extensions import db
from tests.billing.harness import START, D

T = "ten_projection"
STARTED = datetime.fromtimestamp(START, UTC)


def tenant_row(harness):
    with harness.app.app_context():
        tenant = db.session.get(Tenant, T)
        return tenant.plan, tenant.state, tenant.suspension_reason


def projected(harness, tenant=T):
    s = harness.subscription(tenant)
    return (s.status, s.plan, s.current_price_amount, s.scheduled_plan, s.scheduled_price_amount, s.cancel_at_period_end,
            s.forward_mrr, s.account_status)


def test_a_new_subscription(harness):
    harness.tenant(T)
    SCENARIOS["subscribe"](harness.demo, T)
    harness.settle()
    s = harness.subscription(T)
    assert projected(harness) == ("active", "standard", D(49), None, None, False, D(49), "active")
    assert (s.current_price_currency, s.subscribed_since, s.first_payment_failed_at) == ("EUR", STARTED, None)
    assert s.current_period_end == datetime(2026, 2, 1, tzinfo=UTC)
    assert s.payment_method == {"brand": "visa", "last4": "4242", "exp_month": s.payment_method["exp_month"],
                                "exp_year": s.payment_method["exp_year"]}
    assert s.billing_info["name"] == f"Customer of {T}" and s.billing_info["address"]["country"] == "DK"
    assert s.billing_info["tax_id"] == "DK12345678"
    assert tenant_row(harness) == ("standard", "active", None)


def test_canceling_and_downgrading_accounts(harness):
    harness.tenant(T)
    scenario = Scenario(harness.demo, "canceling", T)
    scenario.customer()
    scenario.subscribe("premium")
    scenario.schedule_downgrade("standard")
    harness.settle()
    assert projected(harness) == ("active", "premium", D(99), "standard", D(49), False, D(49), "downgrading")
    other = harness.tenant("ten_canceling")
    scenario = Scenario(harness.demo, "canceling", other)
    scenario.customer()
    scenario.subscribe("premium")
    scenario.set_cancel_at_period_end(True, reason="too_expensive")
    harness.settle()
    assert projected(harness, other) == ("active", "premium", D(99), None, None, True, D(0), "canceling")
    assert harness.subscription(other).cancellation_reason == "too_expensive"


@pytest.mark.parametrize("name, expected, tenant", [
    ("cancel_at_period_end_then_expire", ("canceled", None, None, None, None, True, D(0), "canceled"),
     ("basis", "active", None)),
    ("cancel_at_period_end_then_reactivate", ("active", "standard", D(49), None, None, False, D(49), "active"),
     ("standard", "active", None)),
    ("downgrade_takes_effect", ("active", "standard", D(49), None, None, False, D(49), "active"),
     ("standard", "active", None)),
    ("payment_failed_then_recovered", ("active", "standard", D(49), None, None, False, D(49), "active"),
     ("standard", "active", None)),
    ("payment_failed_then_suspended", ("canceled", None, None, None, None, False, D(0), "canceled"),
     ("basis", "suspended", "payment_failed")),
    ("customer_deleted", ("canceled", None, None, None, None, False, D(0), "canceled"),
     ("basis", "suspended", "customer_deleted")),
    ("yearly_plan", ("active", "premium", D("82.50"), None, None, False, D("82.50"), "active"),
     ("premium", "active", None)),
])
def test_projection_after_a_lifecycle(harness, name, expected, tenant):
    harness.tenant(T)
    SCENARIOS[name](harness.demo, T)
    harness.settle()
    assert projected(harness) == expected
    assert tenant_row(harness) == tenant
    # The trouble that ended a suspended subscription stays on record; a recovery clears it.
    failed = datetime(2026, 2, 1, tzinfo=UTC) if name == "payment_failed_then_suspended" else None
    assert harness.subscription(T).first_payment_failed_at == failed


def test_payment_trouble_is_dated_from_its_first_failure(harness):
    harness.tenant(T)
    scenario = Scenario(harness.demo, "trouble", T)
    scenario.customer()
    scenario.subscribe("standard")
    scenario.set_card("chargeCustomerFail")
    scenario.past_period_end()
    harness.settle()
    s = harness.subscription(T)
    assert s.status == "past_due" and s.first_payment_failed_at == datetime(2026, 2, 1, tzinfo=UTC)

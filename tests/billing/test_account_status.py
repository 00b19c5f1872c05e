"""The stored account status (reference §6): each status, in its priority order, and through real lifecycles."""
from __future__ import annotations

from decimal import Decimal

import pytest

from backoffice.billing.models import Subscription
from backoffice.billing.replay import account_status
from backoffice.demo.scenarios import SCENARIOS


@pytest.mark.parametrize("plan, scheduled, canceling, ever_paid, expected", [
    ("premium", "standard", True, True, "canceling"),  # canceling wins over a scheduled downgrade
    ("premium", "standard", False, True, "downgrading"),
    ("standard", None, False, False, "active"),
    (None, None, False, True, "canceled"),
    ("basis", None, False, True, "canceled"),
    (None, None, False, False, "free"),
    ("basis", None, False, False, "free"),
])
def test_each_status_in_priority_order(plan, scheduled, canceling, ever_paid, expected):
    subscription = Subscription(plan=plan, scheduled_plan=scheduled, cancel_at_period_end=canceling)
    assert account_status(subscription, ever_paid, "basis") == expected


def test_a_refunded_customer_who_left_is_canceled_not_free(harness):
    """Fully refunded, then cancelled at once: the refund does not make the account a never-paying one."""
    harness.tenant("ten_refunded")
    run = SCENARIOS["full_refund"](harness.demo, "ten_refunded")
    harness.demo.client.v1.subscriptions.cancel(run.objects["subscription"])
    harness.settle()
    subscription = harness.subscription("ten_refunded")
    assert subscription.plan is None and subscription.forward_mrr == Decimal("0")
    assert subscription.account_status == "canceled"

"""Each lifecycle scenario end to end — sandbox → signed webhook → archive → replay job → ledger — against
ledgers written down by hand (DESIGN §4.4–§4.5 applied to each scenario's events), in both API shapes and
two currencies. Within one second, the order is §4.4's (chaining, then type precedence), not Stripe's."""
import pytest

from backoffice.demo.scenarios import SCENARIOS
from tests.billing.harness import D, info_row, mrr_row

T = "ten_lifecycle"


def info(event_type, to_plan, committed, from_plan=...):
    return info_row(event_type, to_plan, str(committed), from_plan=from_plan)


def mrr(event_type, from_plan, to_plan, previous, new, movement):
    row = mrr_row(event_type, from_plan, to_plan, str(previous), str(new), movement)
    return row


EXPECTED = {
    'billing_info_and_payment_method_updates': [
        info('BillingInfoAdded', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        mrr('SubscriptionCreated', None, 'standard', 0.00, 49.00, 'new'),
        info('NoOp', 'standard', 49.00),
        info('BillingInfoUpdated', 'standard', 49.00),
        info('NoOp', 'standard', 49.00),
        info('PaymentMethodUpdated', 'standard', 49.00),
    ],
    'cancel_at_period_end_then_expire': [
        info('BillingInfoAdded', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        mrr('SubscriptionCreated', None, 'standard', 0.00, 49.00, 'new'),
        info('NoOp', 'standard', 49.00),
        mrr('SubscriptionCancelled', None, 'standard', 49.00, 0.00, 'churn'),
        mrr('SubscriptionExpired', 'standard', 'basis', 0.00, 0.00, None),
    ],
    'cancel_at_period_end_then_reactivate': [
        info('BillingInfoAdded', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        mrr('SubscriptionCreated', None, 'standard', 0.00, 49.00, 'new'),
        info('NoOp', 'standard', 49.00),
        mrr('SubscriptionCancelled', None, 'standard', 49.00, 0.00, 'churn'),
        mrr('SubscriptionReactivated', None, 'standard', 0.00, 49.00, 'reactivation'),
    ],
    'credit_note_then_void': [
        info('BillingInfoAdded', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        mrr('SubscriptionCreated', None, 'standard', 0.00, 49.00, 'new'),
        info('NoOp', 'standard', 49.00),
        info('NoOp', 'standard', 49.00),
        info('NoOp', 'standard', 49.00),
    ],
    'credit_note_with_refund': [
        info('BillingInfoAdded', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        mrr('SubscriptionCreated', None, 'standard', 0.00, 49.00, 'new'),
        info('NoOp', 'standard', 49.00),
        info('PaymentRefunded', 'standard', 49.00),
    ],
    'customer_deleted': [
        info('BillingInfoAdded', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        mrr('SubscriptionCreated', None, 'standard', 0.00, 49.00, 'new'),
        info('NoOp', 'standard', 49.00),
        mrr('SubscriptionImmediatelyCancelled', 'standard', 'basis', 49.00, 0.00, 'churn'),
        mrr('SubscriptionSuspended', None, 'basis', 0.00, 0.00, None),
    ],
    'downgrade_scheduled_then_released': [
        info('BillingInfoAdded', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        mrr('SubscriptionCreated', None, 'premium', 0.00, 99.00, 'new'),
        info('NoOp', 'premium', 99.00),
        info('NoOp', 'premium', 99.00),
        mrr('SubscriptionDowngradeScheduled', 'premium', 'standard', 99.00, 49.00, 'contraction'),
        info('NoOp', 'premium', 49.00),
        info('NoOp', 'premium', 49.00),
        mrr('SubscriptionDowngradeCancelled', None, 'premium', 49.00, 99.00, 'expansion'),
    ],
    'downgrade_takes_effect': [
        info('BillingInfoAdded', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        mrr('SubscriptionCreated', None, 'premium', 0.00, 99.00, 'new'),
        info('NoOp', 'premium', 99.00),
        info('NoOp', 'premium', 99.00),
        mrr('SubscriptionDowngradeScheduled', 'premium', 'standard', 99.00, 49.00, 'contraction'),
        info('NoOp', 'premium', 49.00),
        info('NoOp', 'premium', 49.00),
        mrr('SubscriptionDowngraded', 'premium', 'standard', 49.00, 49.00, None),
        info('NoOp', 'standard', 49.00),
        info('SubscriptionRenewed', 'standard', 49.00),
    ],
    'forever_coupon': [
        info('BillingInfoAdded', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        mrr('SubscriptionCreated', None, 'standard', 0.00, 39.20, 'new'),
        info('NoOp', 'standard', 39.20),
        info('NoOp', 'standard', 39.20),
        info('SubscriptionRenewed', 'standard', 39.20),
    ],
    'full_refund': [
        info('BillingInfoAdded', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        mrr('SubscriptionCreated', None, 'premium', 0.00, 99.00, 'new'),
        info('NoOp', 'premium', 99.00),
        info('PaymentRefunded', 'premium', 99.00),
    ],
    'immediate_cancel': [
        info('BillingInfoAdded', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        mrr('SubscriptionCreated', None, 'premium', 0.00, 99.00, 'new'),
        info('NoOp', 'premium', 99.00),
        mrr('SubscriptionImmediatelyCancelled', 'premium', 'basis', 99.00, 0.00, 'churn'),
    ],
    'partial_refund': [
        info('BillingInfoAdded', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        mrr('SubscriptionCreated', None, 'premium', 0.00, 99.00, 'new'),
        info('NoOp', 'premium', 99.00),
        info('PaymentRefunded', 'premium', 99.00),
    ],
    'payment_failed_then_recovered': [
        info('BillingInfoAdded', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        mrr('SubscriptionCreated', None, 'standard', 0.00, 49.00, 'new'),
        info('NoOp', 'standard', 49.00),
        info('NoOp', 'standard', 49.00),
        info('SubscriptionPastDue', 'standard', 49.00),
        info('PaymentFailed', 'standard', 49.00),
        info('NoOp', 'standard', 49.00),
        info('PaymentMethodUpdated', 'standard', 49.00),
        info('NoOp', 'standard', 49.00),
        info('PaymentRecovered', 'standard', 49.00),
    ],
    'payment_failed_then_suspended': [
        info('BillingInfoAdded', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        mrr('SubscriptionCreated', None, 'standard', 0.00, 49.00, 'new'),
        info('NoOp', 'standard', 49.00),
        info('NoOp', 'standard', 49.00),
        info('SubscriptionPastDue', 'standard', 49.00),
        info('PaymentFailed', 'standard', 49.00),
        info('PaymentFailed', 'standard', 49.00),
        info('PaymentFailed', 'standard', 49.00),
        info('PaymentFailed', 'standard', 49.00),
        mrr('SubscriptionSuspended', 'standard', 'basis', 49.00, 0.00, 'churn'),
    ],
    'plan_change_while_canceling': [
        info('BillingInfoAdded', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        mrr('SubscriptionCreated', None, 'standard', 0.00, 49.00, 'new'),
        info('NoOp', 'standard', 49.00),
        mrr('SubscriptionCancelled', None, 'standard', 49.00, 0.00, 'churn'),
        mrr('SubscriptionUpgraded', 'standard', 'premium', 0.00, 0.00, None),
        info('NoOp', 'premium', '0.00'),
    ],
    'renew': [
        info('BillingInfoAdded', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        mrr('SubscriptionCreated', None, 'standard', 0.00, 49.00, 'new'),
        info('NoOp', 'standard', 49.00),
        info('NoOp', 'standard', 49.00),
        info('SubscriptionRenewed', 'standard', 49.00),
    ],
    'subscribe': [
        info('BillingInfoAdded', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        mrr('SubscriptionCreated', None, 'standard', 0.00, 49.00, 'new'),
        info('NoOp', 'standard', 49.00),
    ],
    'upgrade_with_proration': [
        info('BillingInfoAdded', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        mrr('SubscriptionCreated', None, 'standard', 0.00, 49.00, 'new'),
        info('NoOp', 'standard', 49.00),
        mrr('SubscriptionUpgraded', 'standard', 'premium', 49.00, 99.00, 'expansion'),
        info('NoOp', 'premium', 99.00),
    ],
    'yearly_plan': [
        info('BillingInfoAdded', None, '0.00'),
        info('NoOp', None, '0.00'),
        info('PaymentMethodUpdated', None, '0.00'),
        mrr('SubscriptionCreated', None, 'premium', 0.00, 82.50, 'new'),
        info('NoOp', 'premium', 82.50),
    ],
}


@pytest.mark.parametrize("currency", ["EUR", "DKK"])
@pytest.mark.parametrize("api_version", [None, "2020-03-02"], ids=["basil", "2020-03-02"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scenario_ledger(harness_factory, name, api_version, currency):
    harness = harness_factory(currency=currency, api_version=api_version)
    harness.tenant(T)
    SCENARIOS[name](harness.demo, T)
    harness.settle()
    assert harness.ledger(T) == EXPECTED[name]
    assert harness.statuses().get("pending", 0) == 0
    assert harness.statuses().get("failed", 0) == 0


def test_every_scenario_has_a_ledger():
    assert set(EXPECTED) == set(SCENARIOS)


def test_rows_carry_the_subscription_currency(harness_factory):
    harness = harness_factory(currency="DKK")
    harness.tenant(T)
    SCENARIOS["upgrade_with_proration"](harness.demo, T)
    harness.settle()
    assert {row.currency for row in harness.rows(T) if row.amount_delta is not None} == {"DKK"}
    assert D(harness.subscription(T).forward_mrr) == D(99)

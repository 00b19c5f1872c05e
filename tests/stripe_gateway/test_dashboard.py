"""Links into Stripe's dashboard: test-mode keys see the /test segment."""
import pytest

from backoffice.stripe_gateway.dashboard import customer_url


@pytest.mark.parametrize("key, expected", [
    ("sk_test_abc", "https://dashboard.stripe.com/test/customers/cus_1"),
    ("rk_test_abc", "https://dashboard.stripe.com/test/customers/cus_1"),
    ("sk_live_abc", "https://dashboard.stripe.com/customers/cus_1"),
    (None, "https://dashboard.stripe.com/customers/cus_1"),
])
def test_customer_url(key, expected):
    assert customer_url(key, "cus_1") == expected

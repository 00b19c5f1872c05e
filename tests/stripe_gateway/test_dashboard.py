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


@pytest.mark.parametrize(("api_base", "linked"), [
    (None, True), ("", True), ("https://api.stripe.com", True), ("https://api.stripe.com/", True),
    ("http://127.0.0.1:12111", False), ("https://stripe.example", False),
])
def test_only_stripes_own_api_has_a_dashboard_to_link_to(api_base, linked):
    assert (customer_url("sk_test_x", "cus_1", api_base) is not None) is linked

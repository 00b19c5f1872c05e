"""The banner stack: each banner's condition, its link, the poll that stops for signed-out operators."""
from __future__ import annotations

from decimal import Decimal

from backoffice.billing import health
from backoffice.demo.scenarios import SCENARIOS
from backoffice.extensions import db
from tests.factories import make_billing_event, make_subscription, make_tenant

HX = {"HX-Request": "true"}


def test_signed_out_polls_stop_and_a_clean_platform_shows_nothing(client, operator_headers, data):
    assert client.get("/banners", headers=HX).status_code == 286
    clean = client.get("/banners", headers={**operator_headers, **HX})
    assert clean.status_code == 200 and clean.get_data(as_text=True).strip() == ""
    page = client.get("/failed-events", headers=operator_headers).get_data(as_text=True)
    assert 'hx-get="/banners" hx-trigger="load, every 60s"' in page


def test_drift_and_unsynced_banners_link_to_the_filtered_list(client, operator_headers, data):
    with data() as session:
        drifting = make_subscription(session, plan="standard", current_price_amount=Decimal("49.00"),
                                     current_price_currency="EUR", forward_mrr=Decimal("49.00"), has_drift_detected=True)
        make_billing_event(session, subscription=drifting, event_type="SubscriptionCreated", from_plan=None,
                           to_plan="standard", previous_amount=Decimal("0"), new_amount=Decimal("49.00"),
                           amount_delta=Decimal("49.00"), committed_mrr=Decimal("49.00"), movement="new")
        for _ in range(2):
            make_subscription(session, plan="premium", current_price_amount=Decimal("99.00"), current_price_currency="EUR",
                              forward_mrr=Decimal("99.00"))
        make_subscription(session, tenant_id=make_tenant(session, deleted_at=drifting.created_at).id,
                          has_drift_detected=True)  # a deleted tenant's drift is not an account's
    text = client.get("/banners", headers={**operator_headers, **HX}).get_data(as_text=True)
    assert "1 account has billing drift detected." in text and 'href="/accounts?driftDetected=true"' in text
    assert "2 accounts have not been synced yet" in text and 'href="/accounts?unsynced=true"' in text
    # Two subscriptions bill 198.00 a month that the ledger has never seen: the three figures disagree.
    assert 'data-banner="mrr"' in text and "€247.00" in text


def test_billing_banners_hide_with_billing(client, operator_headers, data, settings):
    settings(PUBLIC_SUBSCRIPTION_ENABLED=False)
    with data() as session:
        make_subscription(session, has_drift_detected=True)
    assert client.get("/banners", headers={**operator_headers, **HX}).get_data(as_text=True) == ""


def test_mrr_figures_agree_after_real_lifecycles(harness):
    for index, name in enumerate(("subscribe", "upgrade_with_proration", "downgrade_takes_effect",
                                  "cancel_at_period_end_then_expire", "partial_refund", "yearly_plan")):
        tenant = harness.tenant(f"ten_mrr_{index}")
        SCENARIOS[name](harness.demo, tenant)
    harness.settle()
    with harness.app.app_context():
        figures = health.mrr_consistency(db.session, "EUR")
        assert figures.consistent, figures
        assert figures.forward > 0
        assert health.unsynced_count(db.session) == 0 and health.drift_count(db.session) == 0

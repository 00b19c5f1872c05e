"""The banner stack: each banner's condition, its link, the poll that stops for signed-out operators."""
from __future__ import annotations

from decimal import Decimal

from backoffice.billing.reconcile import health
from backoffice.demo.scenarios import SCENARIOS
from backoffice.extensions import db
from tests.factories import make_billing_event, make_subscription, make_tenant

HX = {"HX-Request": "true"}


def test_signed_out_polls_stop_and_a_clean_platform_shows_nothing(client, operator_headers, data):
    assert client.get("/banners", headers=HX).status_code == 286
    clean = client.get("/banners", headers={**operator_headers, **HX})
    assert clean.status_code == 200 and clean.get_data(as_text=True).strip() == ""
    page = client.get("/failed-events", headers=operator_headers).get_data(as_text=True)
    assert 'hx-get="/banners" hx-trigger="every 60s"' in page


def test_a_page_comes_with_its_banners_and_an_error_page_polls_for_them(client, operator_headers, data):
    with data() as session:
        make_subscription(session, has_drift_detected=True)
    page = client.get("/failed-events", headers=operator_headers).get_data(as_text=True)
    slot = page[page.index('<div id="banners"'):]
    slot = slot[:slot.index("</div>")]
    # Drawn before the first paint, so nothing moves once the page is up; the poll only refreshes it.
    assert 'hx-trigger="every 60s"' in slot and 'data-banner="drift"' in slot
    assert 'href="/accounts?driftDetected=true"' in slot
    # An error page may be drawn because the database failed: it asks for its banners after the load.
    missing = client.get("/no-such-page", headers={**operator_headers, "Accept": "text/html"})
    assert missing.status_code == 404
    error_page = missing.get_data(as_text=True)
    assert 'hx-trigger="load, every 60s"' in error_page and 'data-banner=' not in error_page


def test_no_banners_drawn_with_the_page_while_billing_is_hidden(client, operator_headers, data, settings):
    settings(PUBLIC_SUBSCRIPTION_ENABLED=False)
    with data() as session:
        make_subscription(session, has_drift_detected=True)
    page = client.get("/failed-events", headers=operator_headers).get_data(as_text=True)
    assert 'data-banner=' not in page and 'hx-swap="innerHTML"></div>' in page


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
        assert health.account_counts(db.session) == (0, 0)


def test_the_latest_committed_mrr_follows_late_rows_and_corrections(db_session):
    """The banner's second figure (each subscription's latest effective row, kept by the ledger's triggers)."""
    from datetime import timedelta

    from tests.factories import OCCURRED_AT, make_correction

    subscription = make_subscription(db_session, current_price_currency="EUR")
    other = make_subscription(db_session, current_price_currency="EUR")

    def row(owner, days, committed, position=0):
        return make_billing_event(db_session, subscription=owner, currency="EUR", position=position,
                                  occurred_at=OCCURRED_AT + timedelta(days=days), committed_mrr=Decimal(committed))

    def committed():
        return health.mrr_consistency(db_session, "EUR").committed

    row(subscription, 0, "49.00")
    latest = row(subscription, 2, "99.00")
    row(other, 0, "10.00")
    assert committed() == Decimal("109.00")
    row(subscription, 1, "49.00")  # late: it lands before the latest row and changes nothing
    assert committed() == Decimal("109.00")
    make_correction(db_session, latest, committed_mrr=Decimal("79.00"))
    assert committed() == Decimal("89.00")
    same_second = row(subscription, 2, "59.00", position=1)
    assert committed() == Decimal("69.00")
    make_correction(db_session, same_second, committed_mrr=Decimal("59.00"), position=0)  # moved before `latest`
    assert committed() == Decimal("89.00")


def test_the_banners_say_when_drift_was_last_checked(client, operator_headers, data):
    """Silence must read as "checked and clean" or "not checked" (issue 16, item 4)."""
    import re
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from backoffice.billing.models import Subscription

    def stack():
        return client.get("/banners", headers={**operator_headers, **HX}).get_data(as_text=True)

    with data() as session:
        first = make_subscription(session).id
        second = make_subscription(session).id
    never = stack()
    assert 'data-banner="drift-checked"' in never and "Drift has never been checked" in never
    assert 'href="/jobs"' in never and 'class="banner note"' not in never
    with data() as session:
        now = datetime.now(UTC)
        session.execute(update(Subscription).where(Subscription.id == first)
                        .values(drift_checked_at=now - timedelta(days=5)))
        session.execute(update(Subscription).where(Subscription.id == second)
                        .values(drift_checked_at=now - timedelta(days=3)))
    stale = stack()
    assert "Drift last checked 3 days ago: no drift banner does not mean the books are clean." in re.sub(
        r"<[^>]+>", "", stale)
    with data() as session:  # the newest check of any subscription is what the line tells
        session.execute(update(Subscription).where(Subscription.id == second)
                        .values(drift_checked_at=datetime.now(UTC) - timedelta(hours=3)))
    fresh = stack()
    assert 'class="banner note"' in fresh and "Drift last checked 3 hours ago." in re.sub(r"<[^>]+>", "", fresh)
    assert '<time datetime="' in fresh  # the relative time carries the absolute one on hover
    assert 'href="/jobs"' not in fresh
    danish = client.get("/banners", headers={**operator_headers, **HX, "Accept-Language": "da"}).get_data(as_text=True)
    assert "Afvigelser sidst kontrolleret for 3 timer siden." in re.sub(r"<[^>]+>", "", danish)


def test_the_banner_compares_each_currency_in_its_own(db_session):
    """A DKK subscription whose stored MRR its ledger does not back raises the banner though EUR agrees."""
    make_subscription(db_session, current_price_currency="DKK", forward_mrr=Decimal("365.00"))
    assert health.mrr_consistency(db_session, "EUR").consistent
    worst = health.worst_mrr_consistency(db_session, "EUR")
    assert (worst.currency, worst.forward, worst.committed, worst.consistent) == ("DKK", Decimal("365.00"),
                                                                                  Decimal("0.00"), False)
    assert "DKK" in health.billed_currencies(db_session)


def test_the_three_figures_of_every_currency_in_one_pass(db_session):
    """Worked by hand: EUR agrees at 49.00; DKK bills 365.00 a month against a ledger that says 300.00; SEK only
    ever had a ledger row, now cancelled."""
    from datetime import timedelta

    from backoffice.read_models import mrr_daily as rollups
    from tests.factories import OCCURRED_AT

    eur = make_subscription(db_session, current_price_currency="EUR", forward_mrr=Decimal("49.00"))
    dkk = make_subscription(db_session, current_price_currency="DKK", forward_mrr=Decimal("365.00"))
    sek = make_subscription(db_session, current_price_currency=None, forward_mrr=Decimal("0.00"))
    for owner, currency, amount in ((eur, "EUR", "49.00"), (dkk, "DKK", "300.00"), (sek, "SEK", "120.00")):
        make_billing_event(db_session, subscription=owner, currency=currency, event_type="SubscriptionCreated",
                           previous_amount=Decimal("0.00"), new_amount=Decimal(amount), amount_delta=Decimal(amount),
                           committed_mrr=Decimal(amount), movement="new")
    make_billing_event(db_session, subscription=sek, currency="SEK", event_type="SubscriptionImmediatelyCancelled",
                       previous_amount=Decimal("120.00"), new_amount=Decimal("0.00"),
                       amount_delta=Decimal("-120.00"), committed_mrr=Decimal("0.00"), movement="churn",
                       occurred_at=OCCURRED_AT + timedelta(days=3))
    rollups.rebuild(db_session, "EUR")
    figures = {currency: (check.forward, check.committed, check.deltas)
               for currency, check in health.mrr_figures(db_session).items()}
    assert figures == {"EUR": (Decimal("49.00"),) * 3,
                       "DKK": (Decimal("365.00"), Decimal("300.00"), Decimal("300.00")),
                       "SEK": (Decimal("0.00"),) * 3}
    assert health.worst_mrr_consistency(db_session, "EUR").currency == "DKK"
    assert health.mrr_consistency(db_session, "NOK") == health.MrrConsistency("NOK", Decimal("0.00"), Decimal("0.00"),
                                                                              Decimal("0.00"))

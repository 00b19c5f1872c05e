"""Every total agrees with every other total on screen, or says why (issue 16, item 5; DESIGN §4.9, §4.10).

One set of books, with a soft-deleted account that paid and has MRR, an account whose subscription says less than
its ledger, an unsynced one, a deleted one that differs, and a corrected ledger row:
- Blended MRR tile = the MRR trend's last point = the movements' end = Σ the ledger's deltas up to today;
  the subscriptions' forward MRR shows beside it, with how many accounts differ;
- Total revenue tile = the Invoices page's total, deleted accounts counted in both, and each says so;
- the MRR mismatch banner links to exactly the live accounts whose forward MRR differs from their latest
  effective committed MRR (read here from `effective_billing_events` itself).
"""
from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from backoffice.accounts.models import Tenant
from backoffice.billing.ledger import revenue
from backoffice.billing.models import PaymentTransaction, Subscription, effective_billing_events
from backoffice.read import dashboard as queries
from backoffice.read_models import mrr_daily as rollups
from tests.factories import (
    make_billing_event,
    make_correction,
    make_subscription,
    make_tenant,
    new_id,
    payment_values,
)

HX = {"HX-Request": "true"}
D = Decimal


def created(session, subscription, committed, days_ago, **overrides):
    """A SubscriptionCreated row of the subscription, `days_ago` days before now."""
    return make_billing_event(session, subscription=subscription, event_type="SubscriptionCreated", from_plan=None,
                              to_plan="standard", previous_amount=D("0.00"), new_amount=D(committed),
                              amount_delta=D(committed), committed_mrr=D(committed), movement="new",
                              occurred_at=datetime.now(UTC) - timedelta(days=days_ago), position=0, **overrides)


@pytest.fixture
def books(data):
    """The accounts by role, and what each figure must be."""
    with data() as s:
        gone_at = datetime.now(UTC) - timedelta(days=1)

        def account(name, forward, *, deleted=False):
            tenant = make_tenant(s, name=name, deleted_at=gone_at if deleted else None)
            return make_subscription(s, tenant_id=tenant.id, plan="standard", forward_mrr=D(forward),
                                     current_price_amount=D(forward), current_price_currency="EUR")

        agrees = account("Agrees", "49.00")
        created(s, agrees, "49.00", 40)
        downgraded = account("Downgrade Pending", "49.00")  # the subscription says 49, the ledger still 99
        created(s, downgraded, "99.00", 20)
        gone = account("Gone Paying", "99.00", deleted=True)  # deleted, agrees: its MRR and money stay in
        created(s, gone, "99.00", 60)
        unsynced = account("Never Ledgered", "99.00")  # no ledger row yet: differs from 0
        corrected = account("Corrected", "79.00")  # agrees only with the corrected row
        make_correction(s, created(s, corrected, "49.00", 10), event_type="SubscriptionCreated", to_plan="standard",
                        previous_amount=D("0.00"), new_amount=D("79.00"), amount_delta=D("79.00"),
                        committed_mrr=D("79.00"), movement="new")
        gone_differs = account("Gone Differs", "10.00", deleted=True)
        created(s, gone_differs, "20.00", 5)
        # Money: a live payment refunded in part, a credit note, and the deleted account's four payments.
        s.add(PaymentTransaction(**payment_values(agrees, date=datetime.now(UTC) - timedelta(days=30),
                                                  refunded_amount=D("10.00"),
                                                  refunded_at=datetime.now(UTC) - timedelta(days=29))))
        s.add(PaymentTransaction(**payment_values(downgraded, id=new_id("in"), amount_excluding_tax=D("99.00"),
                                                  date=datetime.now(UTC) - timedelta(days=19),
                                                  credited_amount=D("5.00"),
                                                  credit_note_url="https://files.example/cn.pdf",
                                                  credit_noted_at=datetime.now(UTC) - timedelta(days=2))))
        for month in range(4):
            s.add(PaymentTransaction(**payment_values(gone, id=new_id("in"), amount_excluding_tax=D("99.00"),
                                                      date=datetime.now(UTC) - timedelta(days=60 - 10 * month))))
        s.add(PaymentTransaction(**payment_values(unsynced, id=new_id("in"), status="failed")))  # never counted
        s.flush()
        rollups.rebuild(s, "EUR")
        return {"differing": {downgraded.tenant_id, unsynced.tenant_id},
                "names": {"Downgrade Pending", "Never Ledgered"},
                "ledger_mrr": D("346.00"),  # 49 + 99 + 99 (deleted) + 79 (corrected) + 20 (deleted)
                "forward_mrr": D("385.00"),  # 49 + 49 + 99 + 99 + 79 + 10
                "revenue": D("49.00") - D("10.00") + D("99.00") - D("5.00") + 4 * D("99.00"),
                "deleted_revenue": D("396.00")}


def kpi_values(client, headers) -> dict[str, str]:
    text = client.get("/dashboard/cards/kpis?period=30", headers={**headers, **HX}).get_data(as_text=True)
    return dict(re.findall(r'data-kpi="([a-z-]+)" data-value="([^"]*)"', text))


@pytest.mark.parametrize("period", queries.PERIODS)
def test_the_mrr_tile_is_the_trends_last_point_and_the_movements_end(client, operator_headers, books, period):
    tiles = kpi_values(client, operator_headers)
    trend = client.get(f"/dashboard/cards/mrr-trend?period={period}", headers={**operator_headers, **HX})
    last_point = re.findall(r'<tr data-value="([0-9.]+)"', trend.get_data(as_text=True))[-1]
    movements = client.get(f"/dashboard/cards/mrr-movements?period={period}",
                           headers={**operator_headers, **HX}).get_data(as_text=True)
    end = re.search(r'data-mrr-end="([0-9.]+)"', movements).group(1)
    assert D(tiles["blended-mrr"]) == D(last_point) == D(end) == books["ledger_mrr"]
    assert "to €346.00 at the end of today" in movements


def test_the_mrr_tile_says_why_the_subscriptions_differ(client, operator_headers, books):
    text = client.get("/dashboard/cards/kpis?period=30", headers={**operator_headers, **HX}).get_data(as_text=True)
    assert D(kpi_values(client, operator_headers)["forward-mrr"]) == books["forward_mrr"]
    # Two live accounts and one deleted one explain the €39.00.
    assert "The subscriptions bill €385.00 a month from their next renewal: 3 accounts differ from their ledger" in text
    assert "deleted accounts included" in text


def test_the_revenue_tile_equals_the_invoices_total_and_both_count_deleted_accounts(client, operator_headers, books):
    tiles = kpi_values(client, operator_headers)
    invoices_page = client.get("/invoices", headers=operator_headers).get_data(as_text=True)
    total = re.search(r'data-testid="invoice-totals">.*?data-currency="EUR" data-value="([-0-9.]+)"', invoices_page,
                      re.S).group(1)
    assert D(tiles["total-revenue"]) == D(total) == books["revenue"]
    assert D(tiles["deleted-revenue"]) == books["deleted_revenue"]
    assert "includes €396.00 from deleted accounts, as the Invoices total does" in \
        client.get("/dashboard/cards/kpis", headers={**operator_headers, **HX}).get_data(as_text=True)
    assert "Includes €396.00 from 1 deleted account, whose rows are not listed." in invoices_page
    assert "Gone Paying" not in invoices_page  # the list leaves the deleted account out; its money is in the total


def test_the_figures_agree_through_the_domain_too(db_session, books):
    """The same books through the queries the cards call: one instant, one population."""
    period = queries.window(30)
    kpis = queries.kpis(db_session, "EUR", period)
    assert kpis.blended_mrr == queries.mrr_trend(db_session, "EUR", period).last \
        == queries.mrr_movements(db_session, "EUR", period).end == books["ledger_mrr"]
    assert kpis.forward_differs and kpis.mismatches is not None
    assert (kpis.mismatches.live, kpis.mismatches.deleted) == (2, 1)
    assert kpis.total_revenue == revenue.total_revenue(db_session, "EUR") == books["revenue"]


def differing_from_the_view(session) -> set[str]:
    """Tenants whose subscription's forward MRR differs from its latest effective committed MRR, from the view."""
    view = effective_billing_events
    latest: dict[str, tuple] = {}
    for row in session.execute(select(view.c.subscription_id, view.c.occurred_at, view.c.position,
                                      view.c.committed_mrr)):
        if row.subscription_id not in latest or row[1:3] > latest[row.subscription_id][:2]:
            latest[row.subscription_id] = (row.occurred_at, row.position, row.committed_mrr)
    return {subscription.tenant_id for subscription in session.scalars(select(Subscription))
            if abs(subscription.forward_mrr - latest.get(subscription.id, (None, None, D(0)))[2]) >= D("0.01")}


def test_the_mismatch_banner_links_to_exactly_the_accounts_that_differ(client, operator_headers, books, data):
    banner = client.get("/banners", headers={**operator_headers, **HX}).get_data(as_text=True)
    assert 'data-banner="mrr"' in banner
    link = re.search(r'<a href="([^"]+)" data-testid="mrr-mismatch-accounts">([^<]+)</a>', banner)
    assert link.group(1) == "/accounts?mrrMismatch=true"
    assert link.group(2) == "2 accounts' subscriptions differ from their ledger."
    assert "1 deleted account differs too (not listed)." in banner
    listing = client.get(link.group(1), headers=operator_headers).get_data(as_text=True)
    listed = set(re.findall(r'<tr tabindex="0" data-account="([^"]+)"', listing))
    with data() as session:
        deleted = set(session.scalars(select(Tenant.id).where(Tenant.deleted_at.is_not(None))))
        live = differing_from_the_view(session) - deleted
    assert listed == live == books["differing"]
    # The list shows the ledger's figure beside the subscription's, and a badge clears the filter.
    assert 'data-ledger-mrr="99.00"' in listing and 'data-ledger-mrr="0"' in listing
    badge = re.search(r'<a class="badge filter-badge" href="([^"]*)" data-flag="mrrMismatch"[^>]*>([^<]*)', listing)
    assert badge.group(1) == "/accounts" and "MRR differs from the ledger" in badge.group(2)
    rows = list(csv.DictReader(io.StringIO(client.get("/accounts.csv?mrrMismatch=true", headers=operator_headers)
                                           .data.decode("utf-8-sig"))))
    assert {row["id"] for row in rows} == books["differing"] and {row["name"] for row in rows} == books["names"]


def test_the_view_and_the_filter_name_the_same_accounts(db_session, books):
    """The filter's rule (via ledger_tips) and the rule read straight from effective_billing_events agree,
    deleted accounts included."""
    from backoffice.billing.reconcile.health import mrr_mismatch_tenants

    assert set(db_session.scalars(mrr_mismatch_tenants())) == differing_from_the_view(db_session)
    assert len(differing_from_the_view(db_session)) == 3


def test_no_mismatch_no_link(client, operator_headers, data):
    with data() as s:
        subscription = make_subscription(s, forward_mrr=D("49.00"), current_price_currency="EUR")
        created(s, subscription, "49.00", 3)
        rollups.rebuild(s, "EUR")
    banner = client.get("/banners", headers={**operator_headers, **HX}).get_data(as_text=True)
    assert 'data-banner="mrr"' not in banner and "mrrMismatch" not in banner
    assert "forward-mrr" not in kpi_values(client, operator_headers)

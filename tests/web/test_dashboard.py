"""The dashboard over HTTP: the frame, each card alone (partial and page), the period in the URL, billing off."""
from __future__ import annotations

import re
from decimal import Decimal

import pytest

from backoffice.billing.models import PaymentTransaction
from backoffice.read.dashboard import PERIODS
from backoffice.read_models import mrr_daily as rollups
from backoffice.web.dashboard.views import CARDS
from tests.factories import make_billing_event, make_subscription, make_tenant, payment_values

HX = {"HX-Request": "true"}


@pytest.fixture
def books(data):
    with data() as session:
        subscription = make_subscription(session, tenant_id=make_tenant(session, name="Fjord <b>ApS</b>").id,
                                         plan="standard", forward_mrr=Decimal("49.00"), current_price_currency="EUR")
        make_billing_event(session, subscription=subscription, event_type="SubscriptionCreated", previous_amount=Decimal(0),
                           new_amount=Decimal("49.00"), amount_delta=Decimal("49.00"), committed_mrr=Decimal("49.00"),
                           movement="new", occurred_at=subscription.created_at)
        session.add(PaymentTransaction(**payment_values(subscription, date=subscription.created_at)))
        session.flush()
        rollups.rebuild(session, "EUR")


def test_the_frame_has_a_loading_shell_per_card_for_the_period(client, operator_headers, books):
    page = client.get("/?period=7", headers=operator_headers).get_data(as_text=True)
    shells = re.findall(r'data-card="([a-z-]+)" data-state="loading"', page)
    assert shells == list(CARDS)
    assert all(f'/dashboard/cards/{card}?period=7' in page for card in CARDS)
    assert 'aria-current="page">Last 7 days' in page


@pytest.mark.parametrize("period", PERIODS)
@pytest.mark.parametrize("card", list(CARDS))
def test_each_card_renders_alone_as_a_partial_and_as_a_page(client, operator_headers, books, card, period):
    partial = client.get(f"/dashboard/cards/{card}?period={period}", headers={**operator_headers, **HX})
    assert partial.status_code == 200 and "HX-Request" in partial.headers["Vary"]
    text = partial.get_data(as_text=True)
    assert text.lstrip().startswith("<article") and f'data-card="{card}" data-state="loaded"' in text
    assert "<b>ApS</b>" not in text  # escaped
    page = client.get(f"/dashboard/cards/{card}?period={period}", headers=operator_headers).get_data(as_text=True)
    assert "<html" in page and f'data-card="{card}"' in page


def test_tiles_carry_their_values_for_machines(client, operator_headers, books):
    text = client.get("/dashboard/cards/kpis?period=30", headers={**operator_headers, **HX}).get_data(as_text=True)
    values = dict(re.findall(r'data-kpi="([a-z-]+)" data-value="([^"]*)"', text))
    assert values == {"total-accounts": "1", "new-accounts": "1", "blended-mrr": "49.00", "total-revenue": "49.00",
                      "active-users": "0", "active-sessions": "0", "deleted-revenue": "0.00"}
    assert 'href="/billing-events?lens=mrr"' in text and 'href="/users?activity=24h"' in text


def test_charts_have_a_summary_tooltips_and_a_table_of_the_same_numbers(client, operator_headers, books):
    text = client.get("/dashboard/cards/mrr-trend?period=7", headers={**operator_headers, **HX}).get_data(as_text=True)
    assert 'role="img"' in text and "<desc" in text and 'data-chart-table="mrr-trend"' in text
    assert len(re.findall(r'<rect class="hit"', text)) == 7
    assert re.findall(r'<tr data-value="([0-9.]+)"', text)[-1] == "49.00"
    movements = client.get("/dashboard/cards/mrr-movements?period=30", headers={**operator_headers, **HX})
    body = movements.get_data(as_text=True)
    assert 'data-movement="new" data-value="49.00"' in body and 'href="/billing-events?movement=new&amp;period=30"' in body


@pytest.mark.parametrize("url", ["/?period=14", "/?period=", "/dashboard/cards/kpis?period=all"])
def test_a_bad_period_is_a_clear_400(client, operator_headers, url):
    response = client.get(url, headers=operator_headers)
    assert response.status_code == 400 and "period must be one of 7, 30, 90" in response.get_data(as_text=True)


def test_an_unknown_card_is_404(client, operator_headers):
    assert client.get("/dashboard/cards/nope", headers=operator_headers).status_code == 404


def test_billing_cards_and_tiles_hide_when_billing_is_off(client, operator_headers, books, settings):
    settings(PUBLIC_SUBSCRIPTION_ENABLED=False)
    page = client.get("/", headers=operator_headers).get_data(as_text=True)
    assert re.findall(r'data-card="([a-z-]+)" data-state="loading"', page) == [
        "kpis", "account-growth", "user-logins", "recent-signups"]
    assert client.get("/dashboard/cards/mrr-trend", headers=operator_headers).status_code == 404
    tiles = client.get("/dashboard/cards/kpis", headers={**operator_headers, **HX}).get_data(as_text=True)
    assert set(re.findall(r'data-kpi="([a-z-]+)"', tiles)) == {"total-accounts", "new-accounts", "active-users",
                                                               "active-sessions"}


def test_kiosk_mode_refreshes_the_dashboard_every_five_minutes(client, operator_headers):
    assert 'http-equiv="refresh"' not in client.get("/", headers=operator_headers).get_data(as_text=True)
    page = client.get("/", headers=operator_headers).get_data(as_text=True)
    csrf = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    client.post("/preferences/kiosk", headers={**operator_headers, "X-CSRFToken": csrf}, data={"next": "/"})
    kiosk = client.get("/", headers=operator_headers).get_data(as_text=True)
    assert '<meta http-equiv="refresh" content="300">' in kiosk and 'class="kiosk"' in kiosk


@pytest.fixture
def spread(data):
    """Accounts created and users last seen on either side of each period's first UTC day, and a deleted one."""
    from datetime import UTC, datetime, timedelta

    from backoffice.accounts.models import User
    from tests.factories import new_id

    now = datetime.now(UTC)
    midnight = datetime(now.year, now.month, now.day, tzinfo=UTC)
    moments = [now, midnight]
    for days in PERIODS:  # the period's first moment counts; a second before it does not
        moments += [midnight - timedelta(days=days - 1), midnight - timedelta(days=days - 1, seconds=1)]
    moments.append(midnight - timedelta(days=150))
    with data() as session:
        for index, moment in enumerate(moments):
            tenant = make_tenant(session, name=f"Spread {index:02d}", created_at=moment)
            session.add(User(id=new_id("usr"), tenant_id=tenant.id, email=f"spread{index}@example.com",
                             last_seen_at=moment))
        gone = make_tenant(session, name="Spread gone", created_at=now, deleted_at=now)
        session.add(User(id=new_id("usr"), tenant_id=gone.id, email="gone@example.com", last_seen_at=now))
        session.flush()


@pytest.mark.parametrize("period", PERIODS)
def test_each_tile_opens_exactly_the_rows_it_counts(client, operator_headers, spread, period):
    import html

    text = client.get(f"/dashboard/cards/kpis?period={period}", headers={**operator_headers, **HX}).get_data(as_text=True)
    tiles = {kpi: (html.unescape(href), int(value)) for href, kpi, value in re.findall(
        r'href="([^"]+)" data-kpi="(new-accounts|active-users|total-accounts)" data-value="(\d+)"', text)}
    assert tiles["new-accounts"][0] == f"/accounts?created={period}&sort=-created"
    assert tiles["active-users"][0] == f"/users?activity={period}d"
    # Now, midnight, and each period's first moment and the second before it, within this period.
    expected = {7: 3, 30: 5, 90: 7}[period]
    for kpi, row in (("new-accounts", 'data-account="'), ("active-users", 'data-user="'),
                     ("total-accounts", 'data-account="')):
        href, count = tiles[kpi]
        listed = client.get(href, headers=operator_headers).get_data(as_text=True)
        assert listed.count(row) == count, kpi
        if kpi == "new-accounts":  # the list says it is narrowed, and how
            assert f'data-filter-value="created={period}"' in listed and f"Created in the last {period} days" in listed
    assert tiles["new-accounts"][1] == tiles["active-users"][1] == expected


def test_each_delta_says_what_it_compares(client, operator_headers, books):
    text = client.get("/dashboard/cards/kpis?period=30", headers={**operator_headers, **HX}).get_data(as_text=True)
    assert "new sign-ups vs the previous 30 days" in text or "no prior period to compare" in text
    assert "Active users (30 days)" in text


@pytest.fixture
def growing(data):
    """MRR of 6,600 for months, then 8,300 since three days ago."""
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    with data() as session:
        subscription = make_subscription(session, tenant_id=make_tenant(session, name="Growing ApS").id,
                                         plan="premium", forward_mrr=Decimal("8300.00"), current_price_currency="EUR")
        for at, before, after, movement in ((now - timedelta(days=120), "0", "6600.00", "new"),
                                            (now - timedelta(days=3), "6600.00", "8300.00", "expansion")):
            make_billing_event(session, subscription=subscription, event_type="SubscriptionCreated"
                               if movement == "new" else "SubscriptionUpgraded", previous_amount=Decimal(before),
                               new_amount=Decimal(after), amount_delta=Decimal(after) - Decimal(before),
                               committed_mrr=Decimal(after), movement=movement, occurred_at=at)
        session.flush()
        rollups.rebuild(session, "EUR")


def test_the_mrr_axis_is_scaled_to_the_data_with_its_baseline_said(client, operator_headers, growing):
    text = client.get("/dashboard/cards/kpis?period=7", headers={**operator_headers, **HX}).get_data(as_text=True)
    assert "▲ 25.8% MRR vs 7 days ago" in " ".join(text.split())
    text = client.get("/dashboard/cards/mrr-trend?period=7", headers={**operator_headers, **HX}).get_data(as_text=True)
    ticks = re.findall(r'<text class="tick" x="58" y="[0-9.]+" text-anchor="end">([^<]+)</text>', text)
    assert ticks[0] not in ("€0.00", "€0") and '<line class="baseline"' in text
    assert f"The axis starts at {ticks[0]}, not at 0." in text


@pytest.mark.parametrize(("period", "bars"), [(7, 7), (30, 30), (90, 13)])
def test_account_growth_is_weekly_past_31_days(client, operator_headers, books, period, bars):
    text = client.get(f"/dashboard/cards/account-growth?period={period}",
                      headers={**operator_headers, **HX}).get_data(as_text=True)
    assert len(re.findall(r'<rect class="hit"', text)) == bars
    assert ("Week of" in text) == (period == 90)

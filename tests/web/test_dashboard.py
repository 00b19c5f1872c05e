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

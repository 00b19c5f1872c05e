"""/billing-events and /invoices over HTTP: the URL convention, partials, CSV, the raw event view, billing off."""
from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import event

from backoffice.billing.models import MrrDaily, PaymentTransaction, StripeEventDivergence
from backoffice.fx import rates
from backoffice.web.billing_events.views import TYPES
from tests.factories import (
    OCCURRED_AT,
    archive_event,
    make_billing_event,
    make_subscription,
    make_tenant,
    new_id,
    payment_values,
)

HX = {"HX-Request": "true"}
XSS = "<script>alert(1)</script>"
XSS_SHOWN = "&lt;script&gt;alert(1)&lt;/script&gt;"  # as the pages escape it


@pytest.fixture
def books(data):
    with data() as session:
        subscription = make_subscription(session, tenant_id=make_tenant(session, name=XSS).id)
        archive_event(session, id="evt_raw_1", stripe_created_at=OCCURRED_AT, type="customer.subscription.created",
                      api_version="2025-03-31.basil", payload={"id": "evt_raw_1", "object": "event", "note": XSS},
                      payload_hash="a" * 64, status="processed", recovered_at=OCCURRED_AT,
                      recovery_source="events_list")
        session.add(StripeEventDivergence(stripe_event_id="evt_raw_1", payload={"id": "evt_raw_1", "other": True},
                                          payload_hash="b" * 64))
        make_billing_event(session, subscription=subscription, stripe_event_id="evt_raw_1", event_type="SubscriptionCreated",
                           from_plan=None, to_plan="standard", previous_amount=Decimal(0), new_amount=Decimal(49),
                           amount_delta=Decimal(49), committed_mrr=Decimal(49), movement="new")
        make_billing_event(session, subscription=subscription, event_type="SubscriptionRenewed", previous_amount=None,
                           new_amount=None, amount_delta=None, committed_mrr=Decimal(49), movement=None,
                           occurred_at=OCCURRED_AT + timedelta(days=30))
        session.add(PaymentTransaction(**payment_values(subscription, amount_from_credit=Decimal("10.00"),
                                                        invoice_url="https://pay.example/in.pdf")))
        session.add(PaymentTransaction(**payment_values(subscription, id=new_id("in"), status="refunded",
                                                        refunded_amount=Decimal("49.00"),
                                                        refunded_at=OCCURRED_AT + timedelta(days=2))))


def test_billing_events_page_partial_pills_and_escaping(client, operator_headers, books):
    page = client.get("/billing-events", headers=operator_headers)
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "<html" in text and XSS not in text and "&lt;script&gt;" in text
    assert 'href="/billing-events?lens=mrr"' in text and 'data-testid="lens-pills"' in text
    partial = client.get("/billing-events?lens=mrr", headers={**operator_headers, **HX})
    body = partial.get_data(as_text=True)
    assert "<html" not in body and "HX-Request" in partial.headers["Vary"]
    assert partial.headers["HX-Push-Url"] == "/billing-events?lens=mrr"
    assert 'data-event-type="SubscriptionCreated"' in body and 'data-event-type="SubscriptionRenewed"' not in body
    # The Stripe event link is for admins only.
    assert "/stripe-events/evt_raw_1" not in body


@pytest.mark.parametrize(("query", "message"), [
    ("lens=all", "lens"), ("period=14", "period"), ("movement=up", "movement"), ("sort=amount", "sort"),
    ("type=" + "&type=".join(TYPES) + "&type=NoOp", "type"), ("per_page=500", "per_page"),
    ("q=" + "x" * 101, "search is too long"),
])
def test_billing_events_bad_parameters_are_clear_400s(client, operator_headers, query, message):
    response = client.get(f"/billing-events?{query}", headers=operator_headers)
    assert response.status_code == 400 and message in response.get_data(as_text=True)


def test_every_type_at_once_is_allowed(client, operator_headers, books):
    response = client.get("/billing-events?type=" + "&type=".join(TYPES), headers=operator_headers)
    assert response.status_code == 200


def test_billing_events_csv_has_the_filtered_rows(client, operator_headers, books):
    response = client.get("/billing-events.csv?lens=other", headers=operator_headers)
    rows = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert rows[0][:3] == ["occurred_at", "event_type", "account_id"]
    assert [row[1] for row in rows[1:]] == ["SubscriptionRenewed"]


def test_the_raw_event_is_for_admins_pretty_and_marked(client, operator_headers, admin_headers, books):
    assert client.get("/stripe-events/evt_raw_1", headers=operator_headers).status_code == 403
    assert client.get("/stripe-events/evt_nope", headers=admin_headers).status_code == 404
    text = client.get("/stripe-events/evt_raw_1", headers=admin_headers).get_data(as_text=True)
    assert 'data-testid="recovered-marker"' in text and 'data-testid="divergences"' in text
    payload = text.split('data-testid="stripe-event-payload">', 1)[1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in payload and XSS not in text and '\n  &#34;note&#34;' in payload
    listing = client.get("/billing-events", headers=admin_headers).get_data(as_text=True)
    assert 'href="/stripe-events/evt_raw_1"' in listing


def test_invoices_pills_rows_totals_and_csv(client, operator_headers, books):
    text = client.get("/invoices", headers=operator_headers).get_data(as_text=True)
    assert text.count('data-kind="invoice"') == 2 and text.count('data-kind="refund"') == 1
    assert "from credit" in text and 'href="https://pay.example/in.pdf"' in text
    assert 'data-currency="EUR" data-value="49.00"' in text  # 49 + 49 − 49 refunded
    reversals = client.get("/invoices?kind=reversals", headers={**operator_headers, **HX}).get_data(as_text=True)
    assert 'data-kind="invoice"' not in reversals and 'data-kind="refund"' in reversals
    rows = list(csv.DictReader(io.StringIO(client.get("/invoices.csv?sort=amount", headers=operator_headers)
                                           .data.decode("utf-8-sig"))))
    assert [row["kind"] for row in rows] == ["refund", "invoice", "invoice"]  # by amount, ascending
    assert all(row["row_key"].endswith(":" + row["kind"]) for row in rows)
    assert client.get("/invoices?kind=credit", headers=operator_headers).status_code == 400


def test_invoices_filter_by_currency_each_total_in_its_own(client, operator_headers, books, data):
    with data() as session:
        dollars = make_subscription(session, tenant_id=make_tenant(session, name="Dollar Inc.").id,
                                    current_price_currency="USD")
        session.add(PaymentTransaction(**payment_values(dollars, id=new_id("in"), currency="USD")))
    everything = client.get("/invoices", headers=operator_headers).get_data(as_text=True)
    assert 'data-filter="currency"' in everything and 'value="USD"' in everything
    assert 'data-currency="EUR"' in everything and 'data-currency="USD"' in everything
    only = client.get("/invoices?currency=USD", headers={**operator_headers, **HX}).get_data(as_text=True)
    assert only.count('data-kind="invoice"') == 1 and "Dollar Inc." in only
    assert 'data-currency="USD"' in only and 'data-currency="EUR"' not in only
    rows = list(csv.DictReader(io.StringIO(client.get("/invoices.csv?currency=USD&currency=EUR",
                                                      headers=operator_headers).data.decode("utf-8-sig"))))
    assert sorted({row["currency"] for row in rows}) == ["EUR", "USD"]
    assert client.get("/invoices?currency=EURO", headers=operator_headers).status_code == 400


def test_accounts_and_billing_events_filter_by_currency(client, operator_headers, books, data):
    with data() as session:
        dollars = make_subscription(session, tenant_id=make_tenant(session, name="Dollar Inc.").id,
                                    current_price_currency="USD", forward_mrr=Decimal("49.00"))
        make_subscription(session, tenant_id=make_tenant(session, name="Euro GmbH").id, current_price_currency="EUR")
        make_billing_event(session, subscription=dollars, currency="USD", event_type="SubscriptionCreated",
                           from_plan=None, to_plan="standard", previous_amount=Decimal(0), new_amount=Decimal(49),
                           amount_delta=Decimal(49), committed_mrr=Decimal(49), movement="new")
        session.add(MrrDaily(day=OCCURRED_AT.date(), currency="USD", movement="new", delta_sum=Decimal(49),
                             event_count=1))
        session.add(MrrDaily(day=OCCURRED_AT.date(), currency="EUR", movement="new", delta_sum=Decimal(49),
                             event_count=1))
    accounts = client.get("/accounts?currency=USD", headers={**operator_headers, **HX}).get_data(as_text=True)
    assert "Dollar Inc." in accounts and "Euro GmbH" not in accounts
    page = client.get("/accounts", headers=operator_headers).get_data(as_text=True)
    assert 'data-filter="currency"' in page and 'value="USD"' in page
    events = client.get("/billing-events?currency=USD", headers={**operator_headers, **HX}).get_data(as_text=True)
    assert "Dollar Inc." in events and XSS_SHOWN not in events
    euro = client.get("/billing-events?currency=EUR", headers={**operator_headers, **HX}).get_data(as_text=True)
    assert "Dollar Inc." not in euro and XSS_SHOWN in euro
    assert 'data-filter="currency"' in client.get("/billing-events", headers=operator_headers).get_data(as_text=True)
    # Beside each USD amount, what it is in euros at that day's ECB rate (the list keeps the original).
    with data() as session:
        rates.refresh(session, rates.parse(["Date,USD\n", f"{OCCURRED_AT.date() - timedelta(days=3)},1.1000\n",
                                            f"{datetime.now(UTC).date() - timedelta(days=1)},1.0000\n"]))
    events = client.get("/billing-events?currency=USD", headers={**operator_headers, **HX}).get_data(as_text=True)
    assert "$49.00" in events and '<small class="muted converted">≈ €44.55</small>' in events
    accounts = client.get("/accounts?currency=USD", headers={**operator_headers, **HX}).get_data(as_text=True)
    assert '<small class="muted converted">≈ €49.00</small>' in accounts  # today's rate
    assert "converted" not in client.get("/accounts?currency=EUR", headers={**operator_headers, **HX}).get_data(
        as_text=True)
    for url in ("/accounts?currency=usd", "/billing-events?currency=DOLLAR"):
        assert client.get(url, headers=operator_headers).status_code == 400, url


def test_billing_lists_are_gone_when_billing_is_off(client, operator_headers, settings):
    settings(PUBLIC_SUBSCRIPTION_ENABLED=False)
    for url in ("/billing-events", "/billing-events.csv", "/invoices", "/invoices.csv"):
        assert client.get(url, headers=operator_headers).status_code == 404


def test_a_missing_plan_shows_as_a_dash_and_exports_empty_never_as_basis(client, operator_headers, data):
    """Plan transitions are the ledger row's own plans (issue 16, item 6): unknown is "—" on the billing events
    list and the account's tabs, and empty in the CSV; a cancellation shows its row's `→ basis`."""
    with data() as session:
        tenant_id = make_tenant(session, name="Plans Unknown").id
        subscription = make_subscription(session, tenant_id=tenant_id)
        rows = [("SubscriptionRenewed", None, "standard"), ("Unclassified", None, None),
                ("SubscriptionExpired", "premium", "basis"), ("PaymentFailed", "standard", "standard")]
        for day, (kind, from_plan, to_plan) in enumerate(rows):
            make_billing_event(session, subscription=subscription, event_type=kind, from_plan=from_plan, to_plan=to_plan,
                               previous_amount=None, new_amount=None, amount_delta=None, committed_mrr=Decimal(0),
                               movement=None, occurred_at=OCCURRED_AT - timedelta(days=day), position=0)
        session.add(PaymentTransaction(**payment_values(subscription, plan=None)))
    listing = client.get("/billing-events", headers=operator_headers).get_data(as_text=True)
    account = client.get(f"/accounts/{tenant_id}/billing-events", headers=operator_headers).get_data(as_text=True)
    for text in (listing, account):
        cells = dict(re.findall(r'<tr data-event-type="(\w+)">.*?<td data-transition="[^"]*">(.*?)</td>', text, re.S))
        shown = {kind: re.sub(r"<[^>]+>", "", cell).split() for kind, cell in cells.items()}
        assert shown == {"SubscriptionRenewed": ["—", "→", "Standard"], "Unclassified": ["—"],
                         "SubscriptionExpired": ["Premium", "→", "Basis"], "PaymentFailed": ["Standard"]}
    exported = {row["event_type"]: (row["from_plan"], row["to_plan"]) for row in csv.DictReader(io.StringIO(
        client.get("/billing-events.csv", headers=operator_headers).data.decode("utf-8-sig")))}
    assert exported == {"SubscriptionRenewed": ("", "standard"), "Unclassified": ("", ""),
                        "SubscriptionExpired": ("premium", "basis"), "PaymentFailed": ("standard", "standard")}
    invoices_page = client.get("/invoices", headers=operator_headers).get_data(as_text=True)
    plan_cell = re.search(r'data-kind="invoice">(?:\s*<td>.*?</td>){4}\s*<td>(.*?)</td>', invoices_page, re.S).group(1)
    assert re.sub(r"<[^>]+>", "", plan_cell).strip() == "—" and "Basis" not in plan_cell
    invoice_rows = list(csv.DictReader(io.StringIO(client.get("/invoices.csv", headers=operator_headers)
                                                   .data.decode("utf-8-sig"))))
    assert [row["plan"] for row in invoice_rows] == [""]


def test_a_page_of_converted_amounts_reads_its_rates_in_one_query(client, operator_headers, data, db_connection):
    """Rows billed in two foreign currencies on several days: each converted at its own day's rate, and the page
    asks PostgreSQL for all those rates at once, not once per row."""
    with data() as session:
        rates.refresh(session, rates.parse(["Date,USD,GBP\n", f"{OCCURRED_AT.date()},1.2500,0.8000\n",
                                            f"{OCCURRED_AT.date() + timedelta(days=1)},1.0000,0.5000\n"]))
        for currency in ("USD", "GBP"):
            subscription = make_subscription(session, tenant_id=make_tenant(session, name=f"{currency} Ltd").id,
                                             current_price_currency=currency)
            for days in range(4):
                make_billing_event(session, subscription=subscription, currency=currency, event_type="SubscriptionCreated",
                                   from_plan=None, to_plan="standard", previous_amount=Decimal(0),
                                   new_amount=Decimal(10), amount_delta=Decimal(10), committed_mrr=Decimal(10),
                                   movement="new", occurred_at=OCCURRED_AT + timedelta(days=days, hours=1))
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db_connection, "before_cursor_execute", seen)
    try:
        page = client.get("/billing-events?currency=USD&currency=GBP", headers={**operator_headers, **HX})
    finally:
        event.remove(db_connection, "before_cursor_execute", seen)
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    # 10 USD at 1.25 per euro, then at 1.00 from the next day on; 10 GBP at 0.80, then at 0.50.
    assert text.count("≈ €8.00") == 1 and text.count("≈ €10.00") == 3
    assert text.count("≈ €12.50") == 1 and text.count("≈ €20.00") == 3
    assert len([statement for statement in statements if "fx_rate" in statement]) == 1

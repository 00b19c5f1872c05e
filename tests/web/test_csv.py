"""Every list's CSV, as a spreadsheet reads it: a UTF-8 BOM, one ISO 8601 UTC timestamp, true/false, Danish letters
intact, formulas neutralised, structured audit values as JSON."""
from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from backoffice.accounts.models import User
from backoffice.billing.models import PaymentTransaction
from backoffice.operators.models import Operator, OperatorAction
from backoffice.web.csv_export import cell
from tests.factories import archive_event, make_billing_event, make_subscription, make_tenant, payment_values

NAME = "Sønderjylland Sejl ApS"
FORMULA = '=HYPERLINK("http://x","y")'
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
LISTS = ("/accounts.csv", "/users.csv", "/billing-events.csv", "/invoices.csv", "/audit.csv", "/failed-events.csv")
# Each list's timestamp columns (always filled in the fixture) and flag columns.
TIMES = {"/accounts.csv": ("created_at", "renewal_date"), "/users.csv": ("last_seen_at", "created_at"),
         "/billing-events.csv": ("occurred_at",), "/invoices.csv": ("date",), "/audit.csv": ("at",),
         "/failed-events.csv": ("created", "received_at", "failed_at")}
FLAGS = {"/accounts.csv": ("drift_detected",), "/users.csv": ("email_confirmed",), "/billing-events.csv": ("corrected",)}


@pytest.fixture
def lists(data):
    """One row in every list, named in Danish, at a moment with microseconds."""
    at = datetime(2026, 12, 6, 20, 41, 7, 123456, tzinfo=UTC)
    with data() as session:
        tenant = make_tenant(session, name=NAME, created_at=at)
        make_tenant(session, name=FORMULA)
        subscription = make_subscription(session, tenant_id=tenant.id, current_period_end=at + timedelta(days=30))
        session.add(User(id="usr_soren", tenant_id=tenant.id, email="soren@sejl.example", first_name="Søren",
                         last_name="Ærø", role="owner", email_confirmed=True, last_seen_at=at, created_at=at))
        make_billing_event(session, subscription=subscription, occurred_at=at)
        session.add(PaymentTransaction(**payment_values(subscription)))
        archive_event(session, id="evt_failed_1", stripe_created_at=at, type="invoice.paid",
                      api_version="2025-03-31.basil",
                      payload={"id": "evt_failed_1", "object": "event", "data": {"object": {"object": "invoice",
                                                                                            "id": "in_1"}}},
                      payload_hash="c" * 64, status="failed", received_at=at, processed_at=at,
                      error="Sønderjylland: KeyError")
        session.add(Operator(id="oid-ada", name="Ada Admin", email="ada@example.com", is_admin=True))
        session.flush()
        session.add(OperatorAction(operator_id="oid-ada", action="acknowledge_drift", target_tenant_id=tenant.id,
                                   reason="kendt i Sønderjylland", at=at,
                                   parameters={"kinds": ["SubscriptionStateMismatch"]},
                                   result={"acknowledged": 2, "recovery": {"gaps": 1, "currency": "eur"}}))


def read(client, headers, url):
    response = client.get(url, headers=headers)
    assert response.status_code == 200 and response.mimetype == "text/csv", url
    return response.data


@pytest.mark.parametrize("url", LISTS)
def test_every_csv_starts_with_a_bom_and_keeps_danish_letters(client, admin_headers, lists, url):
    body = read(client, admin_headers, url)
    assert body.startswith(b"\xef\xbb\xbf") and not body.startswith(b"\xef\xbb\xbf\xef\xbb\xbf")
    text = body.decode("utf-8-sig")
    assert "Sønderjylland" in text and "\ufeff" not in text
    # The header is the first line, not a BOM-prefixed column name.
    assert next(csv.reader(io.StringIO(text)))[0] in {"id", "occurred_at", "row_key", "at"}


@pytest.mark.parametrize("url", LISTS)
def test_every_timestamp_is_iso_8601_utc_to_the_second(client, admin_headers, lists, url):
    text = read(client, admin_headers, url).decode("utf-8-sig")
    stamps = [row[column] for row in csv.DictReader(io.StringIO(text)) for column in TIMES[url] if row[column]]
    assert stamps and all(STAMP.match(stamp) for stamp in stamps), stamps
    if url != "/invoices.csv":  # the payment's date is the factory's
        assert "2026-12-06T20:41:07Z" in stamps  # the fixture's moment, its microseconds dropped


@pytest.mark.parametrize("url", sorted(FLAGS))
def test_booleans_are_true_or_false(client, admin_headers, lists, url):
    rows = list(csv.DictReader(io.StringIO(read(client, admin_headers, url).decode("utf-8-sig"))))
    values = {row[column] for row in rows for column in FLAGS[url]}
    assert values and values <= {"true", "false"}, values


def test_the_danish_name_round_trips_and_the_formula_is_text(client, operator_headers, lists):
    rows = list(csv.DictReader(io.StringIO(read(client, operator_headers, "/accounts.csv").decode("utf-8-sig"))))
    assert sorted(row["name"] for row in rows) == sorted([NAME, "'" + FORMULA])
    users = list(csv.DictReader(io.StringIO(read(client, operator_headers, "/users.csv").decode("utf-8-sig"))))
    assert [(row["first_name"], row["last_name"], row["account"], row["email_confirmed"]) for row in users] == [
        ("Søren", "Ærø", NAME, "true")]


def test_audit_parameters_and_results_are_json_not_python(client, admin_headers, lists):
    rows = list(csv.DictReader(io.StringIO(read(client, admin_headers, "/audit.csv").decode("utf-8-sig"))))
    assert len(rows) == 1 and rows[0]["reason"] == "kendt i Sønderjylland"
    assert json.loads(rows[0]["parameters"]) == {"kinds": ["SubscriptionStateMismatch"]}
    assert json.loads(rows[0]["result"]) == {"acknowledged": 2, "recovery": {"gaps": 1, "currency": "eur"}}
    assert "'" not in rows[0]["parameters"] + rows[0]["result"]  # no Python repr quoting


@pytest.mark.parametrize(("value", "written"), [
    (None, ""), (True, "true"), (False, "false"), (0, 0), (Decimal("-49.00"), "-49.00"), (Decimal("0E-2"), "0.00"),
    (datetime(2026, 12, 6, 21, 41, 7, 999, tzinfo=timezone(timedelta(hours=1))), "2026-12-06T20:41:07Z"),
    (date(2026, 12, 6), "2026-12-06"), ("-5", "'-5"), ("Sønderjylland", "Sønderjylland"),
    ({"b": ["Ø"], "a": Decimal("1.50")}, '{"a": "1.50", "b": ["Ø"]}'),
])
def test_a_cell_is_written_by_its_type(value, written):
    assert cell(value) == written


def test_a_naive_time_is_refused_rather_than_guessed():
    with pytest.raises(ValueError, match="naive"):
        cell(datetime(2026, 12, 6, 20, 41, 7))  # noqa: DTZ001 - the naive value is the point

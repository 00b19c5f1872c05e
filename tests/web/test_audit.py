"""/audit: every admin action with who, when, target, reason and result; filters, CSV, page and partial."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from backoffice.extensions import db
from backoffice.operators.models import Operator, OperatorAction
from tests.factories import make_tenant

HX = {"HX-Request": "true"}
T0 = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def log(app, db_connection):
    with app.app_context():
        session = db.session
        session.add_all([Operator(id="oid-ada", name="Ada Admin", email="ada@example.com", is_admin=True),
                         Operator(id="oid-bo", name="Bo Boss", email="bo@example.com", is_admin=True)])
        tenant = make_tenant(session, name="Fjord <b>Consulting</b>")
        session.flush()
        session.add_all([
            OperatorAction(operator_id="oid-ada", action="retry_event", target_tenant_id=tenant.id, reason="db blip",
                           parameters={"stripe_event_id": "evt_1"}, at=T0),
            OperatorAction(operator_id="oid-bo", action="replay", target_tenant_id=tenant.id, reason="ledger stale",
                           result={"appended": 3}, at=T0 + timedelta(hours=1)),
            OperatorAction(operator_id="oid-ada", action="sweep", reason="nightly check", at=T0 + timedelta(hours=2)),
        ])
        session.commit()
        tenant_id = tenant.id
        session.remove()
    return tenant_id


def reasons(response) -> list[str]:
    text = response.get_data(as_text=True)
    return [reason for reason in ("nightly check", "ledger stale", "db blip") if reason in text]


def test_newest_first_with_who_what_why_and_result(client, operator_headers, log):
    response = client.get("/audit", headers=operator_headers)
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in text
    assert text.index("nightly check") < text.index("ledger stale") < text.index("db blip")
    assert "Ada Admin" in text and "Replay from archive" in text
    assert '<div data-field="appended"><dt>Ledger rows appended</dt><dd>3</dd></div>' in text
    assert "Fjord &lt;b&gt;Consulting&lt;/b&gt;" in text and "<b>Consulting" not in text


def test_filters_by_action_operator_account_and_search(client, operator_headers, log):
    assert reasons(client.get("/audit?action=replay&action=sweep", headers=operator_headers)) == [
        "nightly check", "ledger stale"]
    assert reasons(client.get("/audit?operator=oid-ada", headers=operator_headers)) == ["nightly check", "db blip"]
    assert reasons(client.get(f"/audit?account={log}", headers=operator_headers)) == ["ledger stale", "db blip"]
    assert reasons(client.get("/audit?q=bo%20boss", headers=operator_headers)) == ["ledger stale"]
    assert reasons(client.get("/audit?sort=at", headers={**operator_headers, **HX})) == [
        "nightly check", "ledger stale", "db blip"]  # all three present; order checked below
    ascending = client.get("/audit?sort=at", headers={**operator_headers, **HX}).get_data(as_text=True)
    assert "<html" not in ascending and ascending.index("db blip") < ascending.index("nightly check")
    assert client.get("/audit?action=delete_everything", headers=operator_headers).status_code == 400


def test_csv_has_every_filtered_entry(client, operator_headers, log):
    response = client.get("/audit.csv?operator=oid-ada", headers=operator_headers)
    table = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert table[0][:4] == ["at", "operator_id", "operator", "action"]
    assert [row[6] for row in table[1:]] == ["nightly check", "db blip"]
    assert table[2][7] == '{"stripe_event_id": "evt_1"}'

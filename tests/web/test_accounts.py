"""/accounts over HTTP: the list URL convention, page and partial, pane, detail tabs, CSV, blobs, admin actions."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backoffice.accounts.models import User
from backoffice.billing.models import PaymentTransaction
from backoffice.extensions import db
from tests.factories import make_billing_event, make_subscription, make_tenant, new_id, payment_values

NOW = datetime.now(UTC)


@pytest.fixture
def accounts(data):
    """Four accounts, one of each kind an operator tells apart, plus a soft-deleted one."""
    with data() as db_session:
        made = _accounts(db_session)
        return {key: tenant.id for key, tenant in made.items()}


def _accounts(db_session):
    made = {}
    made["premium"] = make_tenant(db_session, name="Aurora Analytics", country="DK", plan="premium",
                                  created_at=NOW - timedelta(days=300))
    subscription = make_subscription(db_session, tenant_id=made["premium"].id, plan="premium", status="active",
                                     current_price_amount=Decimal("99.00"), current_price_currency="EUR",
                                     forward_mrr=Decimal("99.00"), account_status="active",
                                     current_period_end=NOW + timedelta(days=12), subscribed_since=NOW - timedelta(days=290))
    db_session.add(PaymentTransaction(**payment_values(subscription, amount_excluding_tax=Decimal("99.00"),
                                                       invoice_total=Decimal("123.75"), amount=Decimal("123.75"),
                                                       tax_amount=Decimal("24.75"))))
    make_billing_event(db_session, subscription=subscription, event_type="SubscriptionCreated", from_plan=None,
                       to_plan="premium", previous_amount=Decimal("0.00"), new_amount=Decimal("99.00"),
                       amount_delta=Decimal("99.00"), committed_mrr=Decimal("99.00"), movement="new")
    made["downgrading"] = make_tenant(db_session, name="Birch & Co", country="SE", plan="premium",
                                      created_at=NOW - timedelta(days=200))
    make_subscription(db_session, tenant_id=made["downgrading"].id, plan="premium", scheduled_plan="standard",
                      status="active", current_price_amount=Decimal("99.00"), scheduled_price_amount=Decimal("49.00"),
                      current_price_currency="EUR", forward_mrr=Decimal("49.00"), account_status="downgrading",
                      current_period_end=NOW + timedelta(days=3), has_drift_detected=True)
    made["free"] = make_tenant(db_session, name="cedar 100% Labs_x", country=None, plan="basis",
                               created_at=NOW - timedelta(days=10))
    made["deleted"] = make_tenant(db_session, name="Aurora Deleted", plan="basis", deleted_at=NOW - timedelta(days=1))
    for index, role in enumerate(("owner", "admin", "member", "member")):
        db_session.add(User(id=new_id("usr"), tenant_id=made["premium"].id, email=f"person{index}@aurora.example",
                            first_name=f"Person{index}", last_name="Aurora", role=role, email_confirmed=index != 3,
                            last_seen_at=NOW - timedelta(days=index * 20) if index < 3 else None))
    return made


def names(response) -> list[str]:
    text = response.get_data(as_text=True)
    return [part.split("</a>", 1)[0].rsplit('">', 1)[1] for part in text.split('class="name-cell"')[1:]]


def test_list_shows_live_accounts_by_name(client, operator_headers, accounts):
    response = client.get("/accounts", headers=operator_headers)
    assert response.status_code == 200
    assert names(response) == ["Aurora Analytics", "Birch &amp; Co", "cedar 100% Labs_x"]
    assert "Aurora Deleted" not in response.get_data(as_text=True)
    assert "HX-Request" in response.headers["Vary"]


HX = {"HX-Request": "true"}


@pytest.mark.parametrize("query, message", [
    ("q=" + "x" * 101, "too long"),
    ("sort=shoe_size", "Unknown sort"),
    ("plan=platinum", "Unknown plan"),
    ("status=sleeping", "Unknown status"),
    ("per_page=5", "per_page"),
    ("per_page=101", "per_page"),
    ("page=0", "page"),
    ("page=9", "does not exist"),
    ("driftDetected=yes", "true or false"),
    ("after=garbage", "cursor"),
])
def test_bad_list_parameters_are_a_clear_400(client, operator_headers, accounts, query, message):
    response = client.get(f"/accounts?{query}", headers=operator_headers)
    assert response.status_code == 400 and message in response.get_data(as_text=True)


def test_filters_sort_and_flags_come_from_the_url(client, operator_headers, accounts):
    assert names(client.get("/accounts?status=downgrading&status=active", headers=operator_headers)) == [
        "Aurora Analytics", "Birch &amp; Co"]
    assert names(client.get("/accounts?sort=-mrr", headers=operator_headers)) == [
        "Aurora Analytics", "Birch &amp; Co", "cedar 100% Labs_x"]
    drift = client.get("/accounts?driftDetected=true&sort=-name", headers=operator_headers)
    text = drift.get_data(as_text=True)
    assert names(drift) == ["Birch &amp; Co"]
    # The badge removes only its own filter and keeps the sort.
    assert 'href="/accounts?sort=-name"' in text and 'data-flag="driftDetected"' in text
    # Sorting and paging links keep the flag.
    assert "/accounts?driftDetected=true&amp;sort=plan" in text
    assert names(client.get("/accounts?q=100%25", headers=operator_headers)) == ["cedar 100% Labs_x"]
    assert names(client.get(f"/accounts?q={accounts['free']}", headers=operator_headers)) == ["cedar 100% Labs_x"]


def test_partial_for_htmx_and_page_without(client, operator_headers, accounts):
    full = client.get("/accounts?plan=premium", headers=operator_headers)
    partial = client.get("/accounts?plan=premium", headers={**operator_headers, **HX})
    assert "<html" in full.get_data(as_text=True) and "<html" not in partial.get_data(as_text=True)
    assert names(partial) == names(full) == ["Aurora Analytics", "Birch &amp; Co"]
    assert "HX-Request" in partial.headers["Vary"]


def test_empty_and_no_results_states(client, operator_headers, data):
    empty = client.get("/accounts", headers=operator_headers).get_data(as_text=True)
    assert "No accounts yet" in empty
    with data() as session:
        make_tenant(session, name="Solo")
    none = client.get("/accounts?q=zzz", headers=operator_headers).get_data(as_text=True)
    assert "Nothing matches these filters" in none and "Clear filters" in none


def test_the_mrr_column_strikes_the_current_price_while_downgrading(client, operator_headers, accounts):
    text = client.get("/accounts?q=birch", headers=operator_headers).get_data(as_text=True)
    assert "<del>€99.00</del> €49.00" in text


def test_csv_export_has_every_filtered_row_in_order(client, operator_headers, accounts):
    response = client.get("/accounts.csv?sort=-name&plan=premium", headers=operator_headers)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    table = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert table[0][:4] == ["id", "name", "plan", "status"]
    assert [row[1] for row in table[1:]] == ["Birch & Co", "Aurora Analytics"]
    assert table[1][4] == "49.00" and table[1][-1] == "true"
    text = client.get("/accounts?plan=premium&sort=-name", headers=operator_headers).get_data(as_text=True)
    assert 'href="/accounts.csv?plan=premium&amp;sort=-name"' in text


def test_the_pane_partial_and_its_bookmark(client, operator_headers, accounts):
    premium = accounts["premium"]
    pane = client.get(f"/accounts/{premium}/pane", headers={**operator_headers, **HX})
    text = pane.get_data(as_text=True)
    assert pane.status_code == 200 and "<html" not in text and "HX-Request" in pane.headers["Vary"]
    assert "Aurora Analytics" in text and "€99.00" in text  # lifetime value: the one paid invoice, ex-VAT
    assert "4 total · 2 active · 1 inactive · 1 pending" in text
    assert text.count('class="person"') == 1 + 3  # one owner, three recent users
    bookmark = client.get(f"/accounts/{premium}/pane", headers=operator_headers)
    assert bookmark.status_code == 303 and bookmark.location.endswith(f"/accounts?pane={premium}")
    page = client.get(f"/accounts?pane={premium}", headers=operator_headers).get_data(as_text=True)
    assert "<html" in page and 'data-testid="account-pane"' in page
    assert client.get("/accounts/ten_missing/pane", headers={**operator_headers, **HX}).status_code == 404
    assert client.get(f"/accounts/{accounts['deleted']}", headers=operator_headers).status_code == 404


@pytest.mark.parametrize("tab, marker", [
    ("", 'data-testid="current-plan"'),
    ("/users", 'data-testid="account-users"'),
    ("/invoices", 'data-testid="invoices"'),
    ("/billing-events", 'data-testid="billing-events"'),
])
def test_each_tab_is_a_url_with_page_and_partial(client, operator_headers, accounts, tab, marker):
    url = f"/accounts/{accounts['premium']}{tab}"
    full = client.get(url, headers=operator_headers)
    partial = client.get(url, headers={**operator_headers, **HX})
    assert full.status_code == partial.status_code == 200
    assert "<html" in full.get_data(as_text=True) and "<html" not in partial.get_data(as_text=True)
    assert marker in full.get_data(as_text=True) and marker in partial.get_data(as_text=True)
    assert 'aria-current="page"' in partial.get_data(as_text=True)
    assert "HX-Request" in partial.headers["Vary"]


def test_the_detail_page(client, operator_headers, admin_headers, accounts):
    url = f"/accounts/{accounts['premium']}"
    text = client.get(url, headers=operator_headers).get_data(as_text=True)
    assert 'data-kpi="users" data-value="2"' in text and "2 / 4" in text
    assert 'data-kpi="lifetime-value" data-value="99.00"' in text
    assert 'data-kpi="mrr" data-value="99.00"' in text
    assert 'data-testid="renewal"' in text and "Subscribed" in text
    assert 'data-testid="actions-menu"' not in text  # not an admin
    assert "https://dashboard.stripe.com/customers/cus_" in text
    admin_text = client.get(url, headers=admin_headers).get_data(as_text=True)
    assert 'data-testid="actions-menu"' in admin_text


def test_a_sandbox_customer_gets_no_link_into_stripes_dashboard(client, settings, operator_headers, accounts):
    """The sandbox's customers do not exist at dashboard.stripe.com: the link would open "not found"."""
    settings(STRIPE_API_BASE="http://127.0.0.1:12111")
    text = client.get(f"/accounts/{accounts['premium']}", headers=operator_headers).get_data(as_text=True)
    assert 'data-testid="open-in-stripe"' not in text and "dashboard.stripe.com" not in text


def test_users_tab_searches_and_filters_by_role(client, operator_headers, accounts):
    url = f"/accounts/{accounts['premium']}/users"
    text = client.get(f"{url}?role=member&sort=email", headers=operator_headers).get_data(as_text=True)
    assert "person2@aurora.example" in text and "person0@aurora.example" not in text
    assert client.get(f"{url}?role=king", headers=operator_headers).status_code == 400
    found = client.get(f"{url}?q=person1", headers=operator_headers).get_data(as_text=True)
    assert "person1@aurora.example" in found and "person3@aurora.example" not in found


def test_billing_hidden_when_subscriptions_are_not_public(client, operator_headers, accounts, settings):
    settings(PUBLIC_SUBSCRIPTION_ENABLED=False)
    text = client.get("/accounts", headers=operator_headers).get_data(as_text=True)
    assert "MRR" not in text and 'data-filter="status"' not in text and "€" not in text
    assert client.get("/accounts?sort=mrr", headers=operator_headers).status_code == 400
    assert client.get("/accounts?driftDetected=true", headers=operator_headers).get_data(as_text=True)
    detail = client.get(f"/accounts/{accounts['premium']}", headers=operator_headers).get_data(as_text=True)
    assert "Lifetime value" not in detail and "Invoices" not in detail
    assert client.get(f"/accounts/{accounts['premium']}/invoices", headers=operator_headers).status_code == 404


def test_names_are_escaped_everywhere(client, operator_headers, data):
    with data() as session:
        tenant_id = make_tenant(session, name="<script>alert(1)</script>").id
    for url, headers in (("/accounts", operator_headers), (f"/accounts/{tenant_id}", operator_headers),
                         (f"/accounts/{tenant_id}/pane", {**operator_headers, **HX})):
        text = client.get(url, headers=headers).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_only_admins_replay_an_account_and_it_is_audited(client, operator_headers, admin_headers, accounts, data):
    from backoffice.operators.models import OperatorAction

    url = f"/accounts/{accounts['premium']}"
    page = client.get(url, headers=admin_headers).get_data(as_text=True)
    token = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    refused = client.post(f"{url}/replay", headers={**operator_headers, "X-CSRFToken": token}, data={"reason": "x"})
    assert refused.status_code == 403
    no_token = client.post(f"{url}/replay", headers=admin_headers, data={"reason": "ledger looks stale"})
    assert no_token.status_code == 400
    done = client.post(f"{url}/replay", headers={**admin_headers, "X-CSRFToken": token},
                       data={"reason": "ledger looks stale"})
    assert done.status_code == 303
    with data() as session:
        action = session.query(OperatorAction).filter_by(action="replay").one()
        assert (action.target_tenant_id, action.reason) == (accounts["premium"], "ledger looks stale")


def test_query_count_does_not_grow_with_the_page_size(app, client, operator_headers, data):
    from sqlalchemy import event

    with data() as session:
        for index in range(60):
            make_tenant(session, name=f"Tenant {index:02d}")
    counts = []
    with app.app_context():
        engine = db.engine
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        for size in (10, 50):
            statements.clear()
            assert client.get(f"/accounts?per_page={size}", headers=operator_headers).status_code == 200
            counts.append(len([s for s in statements if "tenants" in s]))
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert counts[0] == counts[1] and counts[0] <= 3


def test_logos_are_served_to_operators_only_as_checked_images(app, client, operator_headers):
    from backoffice.blobs import BlobStore

    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    store = BlobStore(app.config["BLOB_DIR"])
    store.put("logos/ten_logo_test.png", png)
    store.put("logos/ten_fake.png", b"<svg onload=alert(1)>")
    served = client.get("/logos/ten_logo_test.png", headers=operator_headers)
    assert served.status_code == 200 and served.data == png and served.mimetype == "image/png"
    assert served.headers["X-Content-Type-Options"] == "nosniff" and "private" in served.headers["Cache-Control"]
    again = client.get("/logos/ten_logo_test.png", headers={**operator_headers, "If-None-Match": served.headers["ETag"]})
    assert again.status_code == 304
    assert client.get("/logos/ten_fake.png", headers=operator_headers).status_code == 415
    assert client.get("/logos/missing.png", headers=operator_headers).status_code == 404
    assert client.get("/logos/ten_logo_test.png").status_code in (302, 401)


def test_only_admins_acknowledge_drift_which_keeps_the_discrepancies(client, operator_headers, admin_headers, data):
    from backoffice.billing.models import Subscription
    from backoffice.operators.models import OperatorAction

    found = [{"kind": "SubscriptionStateMismatch", "severity": "Warning", "expected": "49.00", "actual": "99.00",
              "message": "forward MRR differs from Stripe"}]
    with data() as session:
        tenant_id = make_subscription(session, has_drift_detected=True, drift_discrepancies=found).tenant_id
        clean_id = make_subscription(session).tenant_id
    url = f"/accounts/{tenant_id}"
    operator_page = client.get(url, headers=operator_headers).get_data(as_text=True)
    assert 'data-testid="drift-panel"' in operator_page and "SubscriptionStateMismatch" in operator_page
    assert "Acknowledge drift" not in operator_page
    admin_page = client.get(url, headers=admin_headers).get_data(as_text=True)
    token = admin_page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    post = {**admin_headers, "X-CSRFToken": token}
    assert client.post(f"{url}/drift/acknowledge", headers={**operator_headers, "X-CSRFToken": token},
                       data={"reason": "known"}).status_code == 403
    assert client.post(f"/accounts/{clean_id}/drift/acknowledge", headers=post, data={"reason": "x"}).status_code == 400
    assert client.post("/accounts/ten_nobody/drift/acknowledge", headers=post, data={"reason": "x"}).status_code == 404
    done = client.post(f"{url}/drift/acknowledge", headers=post, data={"reason": "price change was intended"})
    assert done.status_code == 303
    with data() as session:
        subscription = session.query(Subscription).filter_by(tenant_id=tenant_id).one()
        assert subscription.has_drift_detected is False
        assert subscription.drift_discrepancies == [{**found[0], "acknowledged": True}]
        assert subscription.drift_acknowledged_by == "oid-admin@example.com"
        action = session.query(OperatorAction).filter_by(action="acknowledge_drift").one()
        assert (action.reason, action.result) == ("price change was intended", {"acknowledged": 1})
    after = client.get(url, headers=admin_headers).get_data(as_text=True)
    assert "Drift acknowledged" in after and "SubscriptionStateMismatch" in after

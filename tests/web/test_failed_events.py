"""/failed-events: the list, its CSV, and the admin's audited retry that moves events through the status machine."""
from sqlalchemy import select, update

from backoffice.billing.models import StripeEvent, StripeEventState
from backoffice.demo.scenarios import SCENARIOS
from backoffice.extensions import db
from backoffice.operators.models import OperatorAction
from tests.billing.test_scenario_ledgers import EXPECTED

T = "ten_failed"
ERROR = "OperationalError: server closed the connection unexpectedly"


def failed_archive(harness, app):
    """A customer's archived events left failed, as a replay that lost its database leaves them."""
    harness.tenant(T)
    SCENARIOS["renew"](harness.demo, T)
    harness.deliver()
    with app.app_context():
        db.session.execute(update(StripeEventState).where(StripeEventState.stripe_event_id == StripeEvent.id,
                                                          StripeEvent.stripe_customer_id.is_not(None))
                           .values(status="failed", error=ERROR))
        db.session.commit()
        return list(db.session.scalars(select(StripeEventState.stripe_event_id).where(StripeEventState.status == "failed")))


def csrf(client, headers):
    page = client.get("/failed-events", headers=headers).get_data(as_text=True)
    return page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def test_operators_see_failed_events_and_only_admins_retry_them(harness, app, client, operator_headers, admin_headers):
    failed = failed_archive(harness, app)
    page = client.get("/failed-events", headers=operator_headers)
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and f"{len(failed)} failed events" in text and ERROR in text
    assert 'name="reason"' not in text  # no retry form for a non-admin
    token = csrf(client, operator_headers)
    refused = client.post(f"/failed-events/{failed[0]}/retry", headers={**operator_headers, "X-CSRFToken": token},
                          data={"reason": "try again"})
    assert refused.status_code == 403
    assert 'name="reason"' in client.get("/failed-events", headers=admin_headers).get_data(as_text=True)


def test_a_retry_needs_a_reason_and_csrf_and_is_audited(harness, app, client, admin_headers):
    failed = failed_archive(harness, app)
    assert client.post(f"/failed-events/{failed[0]}/retry", headers=admin_headers, data={"reason": "x"}).status_code == 400
    token = csrf(client, admin_headers)
    headers = {**admin_headers, "X-CSRFToken": token}
    blank = client.post(f"/failed-events/{failed[0]}/retry", headers=headers, data={"reason": "  "})
    assert blank.status_code == 303
    with app.app_context():
        assert db.session.scalars(select(OperatorAction)).all() == []
    done = client.post(f"/failed-events/{failed[0]}/retry", headers=headers, data={"reason": "database is back"})
    assert done.status_code == 303
    harness.replay()  # the queued replay of the event's customer
    with app.app_context():
        action = db.session.scalars(select(OperatorAction)).one()
        assert (action.action, action.reason, action.target_tenant_id) == ("retry_event", "database is back", None)
        assert action.parameters["stripe_event_id"] == failed[0]
        statuses = set(db.session.scalars(select(StripeEventState.status).where(StripeEventState.stripe_event_id.in_(failed))))
    assert statuses == {"processed"}
    assert harness.ledger(T) == EXPECTED["renew"]
    assert client.post(f"/failed-events/{failed[0]}/retry", headers=headers, data={"reason": "again"}).status_code == 404


def test_failed_events_export_as_csv_and_pages_are_checked(harness, app, client, operator_headers):
    failed = failed_archive(harness, app)
    export = client.get("/failed-events.csv", headers=operator_headers)
    lines = export.data.decode("utf-8-sig").strip().splitlines()
    assert export.mimetype == "text/csv" and lines[0].startswith("id,type,customer_id")
    assert {line.split(",", 1)[0] for line in lines[1:]} == set(failed)
    assert client.get("/failed-events?per_page=5", headers=operator_headers).status_code == 400
    assert len(failed) > 10
    paged = client.get("/failed-events?per_page=10&page=2", headers=operator_headers).get_data(as_text=True)
    assert "Page 2 of" in paged


def test_no_failed_events_is_said_plainly(client, operator_headers):
    page = client.get("/failed-events", headers=operator_headers).get_data(as_text=True)
    assert 'data-testid="empty-state"' in page


def test_a_retry_that_still_cannot_link_its_customer_leaves_the_event_failed_with_the_reason(harness, app, client,
                                                                                               admin_headers):
    SCENARIOS["subscribe"](harness.demo, "ten_nowhere")  # no such tenant in Backoffice
    harness.deliver()
    with app.app_context():
        db.session.execute(update(StripeEventState).where(StripeEventState.stripe_event_id == StripeEvent.id,
                                                          StripeEvent.stripe_customer_id.is_not(None))
                           .values(status="failed", error=ERROR))
        db.session.commit()
        failed = db.session.scalars(select(StripeEventState.stripe_event_id)
                                    .where(StripeEventState.status == "failed")).first()
    token = csrf(client, admin_headers)
    client.post(f"/failed-events/{failed}/retry", headers={**admin_headers, "X-CSRFToken": token},
                data={"reason": "tenant restored?"})
    harness.replay()
    with app.app_context():
        event = db.session.get(StripeEventState, failed)
        assert event.status == "failed" and event.error.startswith("UnknownTenant")

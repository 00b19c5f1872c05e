"""The Sync action over HTTP: admin-only, audited, guarded, a progress element that ends in the result."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from backoffice.demo.scenarios import SCENARIOS
from backoffice.extensions import db
from backoffice.jobs import in_process_runner
from backoffice.operators.models import OperatorAction
from tests.billing.test_reconcile import DROPPED, T, without

HX = {"HX-Request": "true"}


def token(client, headers, url):
    page = client.get(url, headers=headers).get_data(as_text=True)
    return page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


def test_admin_syncs_an_account_with_dropped_webhooks_and_sees_the_result(harness, client, admin_headers, operator_headers):
    harness.tenant(T)
    SCENARIOS["subscribe"](harness.demo, T)
    harness.settle(without(*DROPPED))
    url = f"/accounts/{T}"
    assert 'data-testid="sync-form"' not in client.get(url, headers=operator_headers).get_data(as_text=True)
    csrf = token(client, admin_headers, url)
    refused = client.post(f"{url}/sync", headers={**operator_headers, "X-CSRFToken": csrf}, data={"reason": "x"})
    assert refused.status_code == 403
    started = client.post(f"{url}/sync", headers={**admin_headers, "X-CSRFToken": csrf},
                          data={"reason": "customer says the upgrade is missing"})
    assert started.status_code == 303
    job_id = parse_qs(urlsplit(started.location).query)["sync"][0]
    waiting = client.get(started.location, headers=admin_headers).get_data(as_text=True)
    assert 'data-testid="sync-progress"' in waiting and 'role="progressbar"' in waiting
    in_process_runner(harness.app).drain()
    done = client.get(f"{url}/sync/{job_id}", headers={**admin_headers, **HX})
    text = done.get_data(as_text=True)
    assert done.status_code == 286 and 'data-testid="sync-result"' in text and "In step with Stripe." in text
    assert "ledger row" in text and "missed event" in text
    with harness.app.app_context():
        action = db.session.query(OperatorAction).filter_by(action="sync").one()
        assert action.reason == "customer says the upgrade is missing" and action.result["appended"] >= 1


def test_sync_guards_say_why(app, client, admin_headers, data, settings):
    from tests.factories import make_subscription, make_tenant

    with data() as session:
        tenant_id = make_tenant(session, name="No Stripe yet").id
        make_subscription(session, tenant_id=tenant_id, stripe_customer_id=None)
    url = f"/accounts/{tenant_id}"
    csrf = token(client, admin_headers, url)
    settings(STRIPE_SECRET_KEY=None)
    response = client.post(f"{url}/sync", headers={**admin_headers, "X-CSRFToken": csrf}, data={"reason": "check"},
                           follow_redirects=True)
    assert "Stripe is not configured" in response.get_data(as_text=True)
    settings(STRIPE_SECRET_KEY="sk_test_configured")
    response = client.post(f"{url}/sync", headers={**admin_headers, "X-CSRFToken": csrf}, data={"reason": "check"},
                           follow_redirects=True)
    assert "no Stripe customer" in response.get_data(as_text=True)
    assert client.get(f"{url}/sync/nonexistent", headers={**admin_headers, **HX}).status_code == 404

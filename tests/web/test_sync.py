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


def test_a_sync_with_stripe_unreachable_says_what_failed_what_was_kept_and_offers_a_retry(
        app, client, admin_headers, data, settings):
    from tests.factories import make_subscription, make_tenant
    from tests.throwaway_servers import free_port

    with data() as session:
        tenant_id = make_tenant(session, name="Stripe Away ApS").id
        make_subscription(session, tenant_id=tenant_id, stripe_customer_id="cus_away")
    # Nothing listens on the port: every call to Stripe fails to connect, retried and then given up.
    settings(STRIPE_SECRET_KEY="sk_test_unreachable", STRIPE_API_BASE=f"http://127.0.0.1:{free_port()}",
             IN_PROCESS_JOBS="deferred")
    url = f"/accounts/{tenant_id}"
    csrf = token(client, admin_headers, url)
    started = client.post(f"{url}/sync", headers={**admin_headers, "X-CSRFToken": csrf}, data={"reason": "stale plan"})
    assert started.status_code == 303
    job_id = parse_qs(urlsplit(started.location).query)["sync"][0]
    in_process_runner(app).drain()
    done = client.get(f"{url}/sync/{job_id}", headers={**admin_headers, **HX})
    text = done.get_data(as_text=True)
    assert done.status_code == 286
    sentence = ("Stripe could not be reached, so the sync stopped. Nothing was changed. Retry in a few minutes; "
                "if it keeps failing, check that the worker can reach Stripe.")
    assert sentence in text
    # The retry is the same audited POST, with its CSRF token and a reason; the exception is folded for admins.
    retry = text.split('data-testid="sync-retry"', 1)[1].split("</form>", 1)[0]
    assert f'action="/accounts/{tenant_id}/sync"' in text and 'name="csrf_token"' in retry and 'name="reason"' in retry
    assert '<details class="sync-detail"' in text and "StripeUnavailable" in text.split('class="sync-detail"', 1)[1]
    assert "StripeUnavailable" not in text.split('class="sync-detail"', 1)[0]
    page = client.get(started.location, headers=admin_headers).get_data(as_text=True)
    assert sentence in page and 'data-testid="sync-retry"' in page
    with app.app_context():
        action = db.session.query(OperatorAction).filter_by(action="sync", target_tenant_id=tenant_id).one()
        assert action.result == {"failed": "stripe_unreachable", "outcome": (
            "Stripe could not be reached, so the sync stopped: nothing was changed. Retry in a few minutes; if it "
            "keeps failing, check that the worker can reach Stripe.")}
        assert "Error" not in str(action.result) and "stripe.com" not in str(action.result)
    retried = client.post(f"{url}/sync", headers={**admin_headers, "X-CSRFToken": csrf}, data={"reason": "retry"})
    assert retried.status_code == 303 and "sync=" in retried.location


def test_discrepancies_are_grouped_per_ledger_row_once_each_kind_with_its_action(client, admin_headers, data):
    from tests.factories import make_subscription, make_tenant

    stale = [{"kind": "BillingEventDenormalizationStale", "severity": "WARNING", "event_id": event, "field": name,
              "message": f"{name} differs from a fresh replay", "actual": stored, "expected": expected}
             for event in ("evt_one", "evt_two")
             for name, stored, expected in (("amount_delta", "10.00", "12.00"), ("committed_mrr", "39.00", "49.00"))]
    other = [{"kind": "SubscriptionStateMismatch", "severity": "CRITICAL", "message": "plan differs",
              "expected": "premium", "actual": "standard"},
             {"kind": "MissingHistoricalEventUnrecoverable", "severity": "CRITICAL", "event_id": "sub_gone",
              "message": "no archived event"}]
    with data() as session:
        tenant_id = make_tenant(session, name="Stale Rows ApS").id
        make_subscription(session, tenant_id=tenant_id, has_drift_detected=True, drift_discrepancies=stale + other)
    text = client.get(f"/accounts/{tenant_id}", headers=admin_headers).get_data(as_text=True)
    panel = text.split('data-testid="drift-panel"', 1)[1]
    assert text.count('data-testid="drift-panel"') == 1
    # One section per kind, one rowspan per ledger row, each field stored then expected.
    assert panel.count('data-testid="drift-kind"') == 3
    assert panel.count('rowspan="2"') == 2 and panel.count("<code>amount_delta</code>") == 2
    restate = panel.split('data-action="restate"', 1)[1].split("</section>", 1)[0]
    assert "<td>10.00</td>\n          <td>12.00</td>" in restate and 'data-testid="restate-stale"' in restate
    assert 'href="#recovery-panel"' in panel.split('data-action="recovery"', 1)[1].split("</section>", 1)[0]
    assert 'href="#drift-acknowledge"' in panel.split('data-action="acknowledge"', 1)[1].split("</section>", 1)[0]

"""Disaster recovery over HTTP: offered to admins only, guarded, audited, followed like a Sync."""
from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select

from backoffice.demo.scenarios import Scenario
from backoffice.extensions import db
from backoffice.jobs import in_process_runner
from backoffice.operators.models import OperatorAction
from tests.billing.test_reconcile import without
from tests.web.test_sync import HX, token

T = "ten_dr_web"


def gap_account(harness):
    harness.tenant(T, "Gap & Co")
    scenario = Scenario(harness.demo, "dr", T)
    scenario.customer()
    subscription = scenario.subscribe("standard")
    harness.settle(without("customer.subscription.created"))
    scenario.advance(days=40)
    harness.settle()
    return subscription


def test_an_admin_sees_the_gap_runs_the_recovery_and_the_offer_is_gone(harness, client, admin_headers, operator_headers):
    subscription = gap_account(harness)
    url = f"/accounts/{T}"
    csrf = token(client, admin_headers, url)
    started = client.post(f"{url}/sync", headers={**admin_headers, "X-CSRFToken": csrf}, data={"reason": "check"})
    in_process_runner(harness.app).drain()
    assert started.status_code == 303
    page = client.get(url, headers=admin_headers).get_data(as_text=True)
    assert 'data-testid="recovery-panel"' in page and subscription in page
    assert 'value="2026-01-01T00:00:00"' in page  # the default cutoff: the oldest gap
    assert 'data-testid="recovery-panel"' not in client.get(url, headers=operator_headers).get_data(as_text=True)

    forbidden = client.post(f"{url}/recovery", headers={**operator_headers, "X-CSRFToken": csrf},
                            data={"reason": "x", "cutoff": "2026-01-01T00:00:00"})
    assert forbidden.status_code == 403
    no_csrf = client.post(f"{url}/recovery", headers=admin_headers, data={"reason": "x", "cutoff": "2026-01-01T00:00:00"})
    assert no_csrf.status_code == 400
    for data, message in [({"cutoff": "2026-01-01T00:00:00"}, "Give a reason for the disaster recovery"),
                          ({"reason": "gap", "cutoff": "yesterday"}, "The cutoff must be a date and time in UTC"),
                          ({"reason": "gap", "cutoff": "2999-01-01T00:00:00"}, "The cutoff is in the future")]:
        refused = client.post(f"{url}/recovery", headers={**admin_headers, "X-CSRFToken": csrf}, data=data,
                              follow_redirects=True)
        assert message in refused.get_data(as_text=True), data

    started = client.post(f"{url}/recovery", headers={**admin_headers, "X-CSRFToken": csrf},
                          data={"reason": "subscription predates the webhook", "cutoff": "2026-01-01T00:00:00"})
    assert started.status_code == 303
    job_id = parse_qs(urlsplit(started.location).query)["sync"][0]
    in_process_runner(harness.app).drain()
    done = client.get(f"{url}/sync/{job_id}", headers={**admin_headers, **HX}).get_data(as_text=True)
    assert 'data-testid="recovery-result"' in done and "1 gap covered by a baseline of €49.00 per month." in done
    assert "In step with Stripe." in done
    after = client.get(f"{url}/billing-events", headers=admin_headers).get_data(as_text=True)
    assert 'data-testid="recovery-panel"' not in after and "Ledger baseline" in after
    with harness.app.app_context():
        action = db.session.scalar(select(OperatorAction).where(OperatorAction.action == "disaster_recovery"))
        assert action.reason == "subscription predates the webhook"
        assert action.parameters == {"cutoff": "2026-01-01T00:00:00+00:00"} and action.result["recovery"]["gaps"] == 1

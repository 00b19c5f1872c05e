"""Billing events and invoices in Chromium (the seed's billing-events-flows.spec.ts): the menu, the pills in the
URL, All resets, search and clear, sort by account, the dashboard's View all; invoices pills and search."""
from __future__ import annotations

import pytest

from backoffice.extensions import db
from backoffice.read_models import mrr_daily as rollups
from tests.e2e.conftest import LIVE_SETTINGS, screenshot, serving
from tests.e2e.test_accounts_flows import seed

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]


@pytest.fixture(scope="module")
def server(make_app, own_database):
    app = make_app(SQLALCHEMY_DATABASE_URI=own_database, **LIVE_SETTINGS, PUBLIC_SUBSCRIPTION_ENABLED=True)
    with app.app_context():
        seed(db.session)
        rollups.rebuild(db.session, "EUR")
        db.session.commit()
    with serving(app) as url:
        yield url


def sign_in(page, server):
    page.goto(f"{server}/")
    if page.get_by_role("button", name="Sign in as admin").count():
        page.get_by_role("button", name="Sign in as admin").click()
        page.wait_for_url(f"{server}/")


def pick(page, server, pills, name, path):
    """Click one pill of a row of pills and wait for the URL it pushes."""
    page.get_by_test_id(pills).get_by_role("link", name=name).click()
    page.wait_for_url(f"{server}{path}")


def names(page, testid):
    return page.locator(f"[data-testid={testid}] tbody tr td:nth-child(3)").all_inner_texts()


def test_billing_events_flows(server, page):
    sign_in(page, server)
    page.locator("nav.side-menu").get_by_role("link", name="Billing events").click()
    page.wait_for_url(f"{server}/billing-events")
    rows = page.locator("[data-testid=billing-events] tbody tr")
    assert rows.count() == 20
    pick(page, server, "lens-pills", "MRR impact", "/billing-events?lens=mrr")
    assert page.get_by_test_id("lens-pills").locator("[aria-current=true]").inner_text() == "MRR impact"
    pick(page, server, "lens-pills", "Other", "/billing-events?lens=other")
    page.get_by_test_id("empty-state").wait_for()
    pick(page, server, "lens-pills", "All", "/billing-events")
    page.get_by_role("searchbox").fill("tundra")
    page.wait_for_url(f"{server}/billing-events?q=tundra")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=billing-events] tbody tr').length === 2")
    assert set(names(page, "billing-events")) == {"Tundra Labs", "Tundra Works"}
    screenshot(page, "billing-events-search")
    page.get_by_role("searchbox").fill("")
    page.wait_for_url(f"{server}/billing-events")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=billing-events] tbody tr').length === 20")
    page.locator("[data-testid=billing-events] thead").get_by_role("link", name="Account").click()
    page.wait_for_url(f"{server}/billing-events?sort=account")
    page.wait_for_function("() => document.querySelector('[data-testid=billing-events] tbody tr td:nth-child(3)')"
                           ".innerText.startsWith('Granite')")
    listed = names(page, "billing-events")
    assert listed == sorted(listed, key=str.lower)
    screenshot(page, "billing-events")
    page.goto(f"{server}/")
    page.locator('[data-card="recent-billing-events"][data-state="loaded"]').wait_for()
    page.get_by_test_id("billing-events-view-all").click()
    page.wait_for_url(f"{server}/billing-events")


def test_invoices_pills_and_search(server, page):
    sign_in(page, server)
    page.locator("nav.side-menu").get_by_role("link", name="Invoices").click()
    page.wait_for_url(f"{server}/invoices")
    assert page.locator("[data-testid=invoices] tbody tr").count() == 20
    pick(page, server, "kind-pills", "Refunds and credit notes", "/invoices?kind=reversals")
    page.get_by_test_id("empty-state").wait_for()
    pick(page, server, "kind-pills", "Invoices", "/invoices?kind=invoices")
    page.get_by_role("searchbox").fill("quartz")
    page.wait_for_url(f"{server}/invoices?q=quartz&kind=invoices")
    page.wait_for_function("() => document.querySelectorAll('[data-testid=invoices] tbody tr').length === 2")
    assert "€" in page.get_by_test_id("invoice-totals").inner_text()
    screenshot(page, "invoices")

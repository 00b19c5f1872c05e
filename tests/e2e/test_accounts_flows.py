"""The accounts workflow in Chromium: search, filters, sort, pages, the pane by keyboard, the detail and its tabs."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backoffice.accounts.models import User
from backoffice.billing.models import PaymentTransaction
from tests.e2e.conftest import screenshot, seeded_server, settle, sign_in
from tests.factories import make_billing_event, make_subscription, make_tenant, new_id, payment_values

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

NOW = datetime.now(UTC)
WORDS = ("Nordic", "Harbor", "Granite", "Juniper", "Lumen", "Orchid", "Pioneer", "Quartz", "Summit", "Tundra")
XSS = "<script>alert(1)</script>"
PLANS = ("premium", "standard", "basis")


def seed(session) -> None:
    """Thirty accounts across plans and statuses, people on the first, and a tenant named like an attack."""
    for index in range(30):
        plan = PLANS[index % 3]
        tenant = make_tenant(session, name=f"{WORDS[index % 10]} {'Labs' if index < 10 else 'Works' if index < 20 else 'Group'}",
                             plan=plan, country=("DK", "SE", "DE", "NO")[index % 4], created_at=NOW - timedelta(days=index))
        if plan == "basis":
            continue
        price = Decimal("99.00") if plan == "premium" else Decimal("49.00")
        downgrading = index % 5 == 0 and plan == "premium"
        subscription = make_subscription(
            session, tenant_id=tenant.id, plan=plan, status="active", current_price_amount=price, current_price_currency="EUR",
            forward_mrr=Decimal("49.00") if downgrading else price, scheduled_plan="standard" if downgrading else None,
            scheduled_price_amount=Decimal("49.00") if downgrading else None,
            account_status="downgrading" if downgrading else "active", current_period_end=NOW + timedelta(days=index),
            subscribed_since=NOW - timedelta(days=100 + index), has_drift_detected=index == 1,
            payment_method={"brand": "visa", "last4": "4242", "exp_month": 4, "exp_year": 2030},
            billing_info={"name": tenant.name, "address": {"line1": "Strandvejen 1", "postal_code": "2100", "city": "København",
                                                         "country": "DK"}, "tax_id": "DK12345678"})
        session.add(PaymentTransaction(**payment_values(subscription, id=new_id("in"), amount_excluding_tax=price,
                                                        invoice_total=price * Decimal("1.25"), amount=price * Decimal("1.25"),
                                                        tax_amount=price / 4, date=NOW - timedelta(days=20))))
        make_billing_event(session, subscription=subscription, event_type="SubscriptionCreated", from_plan=None, to_plan=plan,
                           previous_amount=Decimal("0.00"), new_amount=price, amount_delta=price, committed_mrr=price,
                           movement="new", occurred_at=NOW - timedelta(days=100 + index))
        if index == 0:
            for number, role in enumerate(("owner", "admin", "member", "member")):
                session.add(User(id=new_id("usr"), tenant_id=tenant.id, email=f"p{number}@nordic.example", role=role,
                                 first_name=f"Person{number}", last_name="Nordic", email_confirmed=True,
                                 last_seen_at=NOW - timedelta(days=number)))
    make_tenant(session, name=XSS, plan="basis", country="DK", created_at=NOW)


@pytest.fixture(scope="module")
def accounts_server(make_app, own_database):
    with seeded_server(make_app, own_database, seed) as url:
        yield url


def row_names(page) -> list[str]:
    return page.locator("[data-testid=accounts] tbody tr td.name-cell a").all_inner_texts()


def test_search_filters_sort_and_pages(accounts_server, page):
    alerts = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    sign_in(page, accounts_server, "/accounts")
    assert page.get_by_test_id("result-count").inner_text().startswith("31 results")
    screenshot(page, "accounts-list")

    page.get_by_label("Search accounts").fill("nordic")
    page.wait_for_url(re.compile(r"q=nordic"))
    page.wait_for_function("() => document.querySelectorAll('[data-testid=accounts] tbody tr').length === 3")
    assert all("Nordic" in name for name in row_names(page))

    page.goto(f"{accounts_server}/accounts")
    page.locator("[data-filter=plan] summary").click()
    page.get_by_label("Premium").check()
    page.get_by_label("Standard").check()
    page.locator("[data-filter=plan]").get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"\?plan=standard&plan=premium$"))
    page.locator("[data-filter=status] summary").click()
    page.get_by_label("Active", exact=True).check()
    page.locator("[data-filter=status]").get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"status=active"))
    page.wait_for_function("() => document.querySelector('[data-testid=result-count]').innerText.startsWith('18 results')")
    page.get_by_label("Rows").select_option("10")
    page.wait_for_url(re.compile(r"per_page=10"))
    page.get_by_role("link", name="Next").click()
    page.wait_for_url(re.compile(r"page=2"))
    assert "plan=standard&plan=premium" in page.url and "status=active" in page.url
    page.wait_for_function("() => document.querySelectorAll('[data-testid=accounts] tbody tr').length === 8")
    screenshot(page, "accounts-filtered-page-2")

    page.get_by_role("link", name="Clear filters").first.click()
    page.wait_for_url(re.compile(r"/accounts(\?per_page=10)?$"))
    settle(page)
    page.locator("th a[data-sort=name]").click()
    page.wait_for_url(re.compile(r"sort=-name"))
    page.wait_for_function("() => document.querySelector('[data-testid=accounts] tbody td.name-cell a')"
                           ".innerText.startsWith('Tundra')")
    page.locator("th a[data-sort=name]").click()
    page.wait_for_url(re.compile(r"/accounts(\?per_page=10)?$"))
    assert row_names(page)[0] == XSS  # "<" sorts first, and shows as text
    assert alerts == []


def test_pane_by_keyboard_detail_tabs_and_escaping(accounts_server, page):
    alerts = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    sign_in(page, accounts_server, "/accounts")
    rows = page.locator("[data-testid=accounts] tbody tr")
    rows.nth(0).focus()
    pane = page.get_by_test_id("account-pane")
    pane.wait_for()
    assert pane.locator("h2").inner_text() == XSS
    page.keyboard.press("ArrowDown")
    page.wait_for_function("() => document.querySelector('[data-testid=account-pane] h2').innerText.startsWith('Granite')")
    second = rows.nth(1).get_attribute("data-account")
    page.wait_for_function(f"() => location.search.includes('pane={second}')")
    screenshot(page, "accounts-pane")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{accounts_server}/accounts/{second}")
    assert page.get_by_test_id("account-header").is_visible() and page.get_by_test_id("actions-menu").count() == 1

    for tab, testid in (("Users", "tab-users"), ("Invoices", "tab-invoices"), ("Billing events", "tab-billing_events"),
                        ("Overview", "tab-overview")):
        page.get_by_role("tab", name=tab).click()
        page.get_by_test_id(testid).wait_for()
        assert page.get_by_role("tab", name=tab).get_attribute("aria-selected") == "true"
        screenshot(page, f"account-{testid}")
    assert page.url == f"{accounts_server}/accounts/{second}"
    assert page.get_by_test_id("current-plan").get_by_text("4242").is_visible()

    xss_id = page.goto(f"{accounts_server}/accounts?q=script") and rows.nth(0).get_attribute("data-account")
    page.goto(f"{accounts_server}/accounts/{xss_id}")
    assert page.locator("h1").inner_text() == XSS
    assert alerts == []


def test_a_non_admin_sees_no_actions_menu(accounts_server, page):
    sign_in(page, accounts_server, "/accounts", "operator")
    page.locator("[data-testid=accounts] tbody tr td.name-cell a").nth(1).click()
    page.get_by_test_id("account-header").wait_for()
    assert page.get_by_test_id("actions-menu").count() == 0
    assert page.get_by_test_id("open-in-stripe").is_visible()

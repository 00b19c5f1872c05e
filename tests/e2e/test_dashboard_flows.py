"""The dashboard in Chromium: cards load on their own, the period drives every card and the URL, tiles navigate,
tooltips, Kiosk mode; screenshots in en and da on a desktop and a phone."""
from __future__ import annotations

from datetime import timedelta

import pytest

from backoffice.accounts.models import Login, User
from backoffice.extensions import db
from backoffice.read_models import mrr_daily as rollups
from tests.e2e.conftest import LIVE_SETTINGS, screenshot, serving
from tests.e2e.test_accounts_flows import NOW, seed
from tests.factories import new_id

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

LOADED = "() => [...document.querySelectorAll('[data-card]')].every(card => card.dataset.state === 'loaded')"


@pytest.fixture(scope="module")
def dashboard_server(make_app, own_database):
    app = make_app(SQLALCHEMY_DATABASE_URI=own_database, **LIVE_SETTINGS, PUBLIC_SUBSCRIPTION_ENABLED=True)
    with app.app_context():
        seed(db.session)
        user = db.session.scalars(db.select(User)).first()
        for day in range(120):
            for attempt in range(day % 4):
                db.session.add(Login(id=new_id("lgn"), user_id=user.id, email=user.email, method="google",
                                     outcome="succeeded", created_at=NOW - timedelta(days=day, hours=attempt)))
        db.session.flush()
        rollups.rebuild(db.session, "EUR")
        db.session.commit()
    with serving(app) as url:
        yield url


def open_dashboard(page, server, query=""):
    page.goto(f"{server}/{query}")
    if page.get_by_role("button", name="Sign in as admin").count():
        page.get_by_role("button", name="Sign in as admin").click()
        page.goto(f"{server}/{query}")
    page.wait_for_function(LOADED)


def through_menu(page, choice):
    """Clicks a choice in the avatar menu: each is a form POST that reloads the page, so wait for the new one, not the
    old one that is already loaded."""
    page.locator("details.avatar-menu summary").click()
    with page.expect_navigation():
        choice.click()
    page.wait_for_function(LOADED)


def card_texts(page):
    return {card.get_attribute("data-card"): card.inner_text() for card in page.locator("[data-card]").all()}


def test_each_period_changes_every_card_and_the_url(dashboard_server, page):
    open_dashboard(page, dashboard_server)
    before = card_texts(page)
    assert len(before) == 9
    page.get_by_role("button", name="Last 7 days").click()
    page.wait_for_url(f"{dashboard_server}/?period=7")
    page.wait_for_function(LOADED)
    after = card_texts(page)
    # Every card that depends on the period reads differently; the plan mix and the recents do not depend on it.
    changed = {name for name in before if before[name] != after[name]}
    assert changed >= {"kpis", "mrr-trend", "revenue-trend", "mrr-movements", "account-growth", "user-logins"}
    assert page.locator('[data-chart="user-logins"] .hit').count() == 7
    page.get_by_role("button", name="Last 90 days").click()
    page.wait_for_url(f"{dashboard_server}/?period=90")
    page.wait_for_function(LOADED)
    assert page.locator('[data-chart="user-logins"] .hit').count() == 90
    # Ninety daily bars are hairlines: account growth is drawn per week past 31 days.
    assert page.locator('[data-chart="account-growth"] .hit').count() == 13
    assert page.locator('[data-chart="account-growth"] .hit').first.get_attribute("data-label").startswith("Week of")


def test_tooltips_tiles_and_view_all_navigate(dashboard_server, page):
    open_dashboard(page, dashboard_server, "?period=30")
    hit = page.locator('[data-chart="user-logins"] .hit').nth(10)
    hit.hover()
    tip = page.locator('[data-chart="user-logins"] .chart-tip')
    assert tip.is_visible() and "vs prior period" in tip.inner_text()
    total = page.locator('[data-kpi="total-accounts"]')
    assert total.get_attribute("data-value") == "31"
    total.click()
    page.wait_for_url(f"{dashboard_server}/accounts")
    open_dashboard(page, dashboard_server, "?period=30")
    page.locator('[data-kpi="active-sessions"]').click()
    page.wait_for_url(f"{dashboard_server}/users?activity=24h")
    open_dashboard(page, dashboard_server, "?period=30")
    page.get_by_test_id("billing-events-view-all").click()
    page.wait_for_url(f"{dashboard_server}/billing-events")


def test_kiosk_mode_hides_the_menu_and_keeps_the_cards(dashboard_server, page):
    open_dashboard(page, dashboard_server)
    assert page.locator("nav.side-menu").is_visible()
    through_menu(page, page.get_by_test_id("kiosk-toggle"))
    assert not page.locator("nav.side-menu").is_visible()
    assert page.locator('meta[http-equiv="refresh"]').get_attribute("content") == "300"
    screenshot(page, "dashboard-kiosk")
    through_menu(page, page.get_by_test_id("kiosk-toggle"))
    assert page.locator("nav.side-menu").is_visible()


@pytest.mark.parametrize("language", ["en", "da"])
@pytest.mark.parametrize(("device", "size"), [("desktop", (1440, 900)), ("phone", (390, 844))])
def test_screenshots(dashboard_server, browser, language, device, size):
    context = browser.new_context(locale="en-US", viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    try:
        open_dashboard(page, dashboard_server)
        if language == "da":
            through_menu(page, page.locator("button[lang=da]"))
            assert page.get_by_role("heading", name="Nøgletal").is_visible()
        screenshot(page, f"dashboard-{language}-{device}")
    finally:
        if language == "da":  # the choice is the operator's preference: give the other tests their English back
            through_menu(page, page.locator("button[lang=en]"))
        context.close()


def test_a_failed_card_holds_up_no_other_and_offers_to_try_again(dashboard_server, page):
    open_dashboard(page, dashboard_server)
    released = []

    def failing_until_released(route):
        if not released:
            route.fulfill(status=500, body="boom")
            return
        route.continue_()
    page.route("**/dashboard/cards/revenue-trend*", failing_until_released)
    page.goto(f"{dashboard_server}/?period=30")
    failed = page.locator('[data-card="revenue-trend"][data-state="error"]')
    failed.wait_for()
    assert "This card could not be loaded." in failed.inner_text()
    others = ("() => [...document.querySelectorAll('[data-card]:not([data-card=revenue-trend])')]"
              ".every(c => c.dataset.state === 'loaded')")
    page.wait_for_function(others)
    released.append(True)
    failed.get_by_role("button", name="Try again").click()
    page.locator('[data-card="revenue-trend"][data-state="loaded"]').wait_for()


@pytest.mark.parametrize("period", [7, 30, 90])
def test_each_tile_opens_exactly_the_rows_it_counts(dashboard_server, page, period):
    open_dashboard(page, dashboard_server, f"?period={period}")
    delta = page.get_by_test_id("new-accounts-delta").inner_text()
    assert f"new sign-ups vs the previous {period} days" in delta or delta == "no prior period to compare"
    for kpi, rows in (("new-accounts", "[data-testid=accounts] tbody tr[data-account]"),
                      ("active-users", "tbody tr[data-user]")):
        open_dashboard(page, dashboard_server, f"?period={period}")
        tile = page.locator(f'[data-kpi="{kpi}"]')
        counted = int(tile.get_attribute("data-value"))
        tile.click()
        page.wait_for_load_state()
        # The list's own count of the rows it holds (over every page), and the rows of its first page.
        listed = page.get_by_test_id("result-count")
        total = int(listed.inner_text().split()[0]) if listed.count() else 0
        assert total == counted and page.locator(rows).count() == min(counted, 25), (kpi, page.url)
    assert f"activity={period}d" in page.url


def test_the_mrr_axis_starts_near_the_data_and_says_so(dashboard_server, page):
    open_dashboard(page, dashboard_server, "?period=30")
    chart = page.locator('[data-chart="mrr-trend"]')
    note = chart.get_by_test_id("axis-note")
    # The seeded MRR stays above 0 throughout the period and the prior one: the axis spans the data alone.
    assert note.inner_text().startswith("The axis starts at") and chart.locator("line.baseline").count() == 1
    lowest = chart.locator("text.tick[text-anchor=end]").first.text_content()
    assert lowest != "€0.00" and lowest in note.inner_text()
    screenshot(page, "dashboard-mrr-axis")


def test_the_metrics_page_loads_its_cohort_grid_as_a_card_and_switches_it(dashboard_server, page):
    """The cohort grid arrives after the page, as the dashboard's cards do; its switch swaps it and keeps the page's
    address (with the view) in the history."""
    open_dashboard(page, dashboard_server, "saas-metrics?period=6")
    grid = page.locator("[data-testid=cohorts]")
    assert grid.get_attribute("data-view") == "logos" and page.locator("[data-card=cohorts]").count() == 0
    grid.locator("nav.pills a", has_text="MRR").click()
    page.wait_for_selector("[data-testid=cohorts][data-view=mrr]")
    assert page.url == f"{dashboard_server}/saas-metrics?period=6&cohort=mrr"
    page.go_back()
    page.wait_for_url(f"{dashboard_server}/saas-metrics?period=6")

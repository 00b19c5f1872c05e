"""The users workflow in Chromium: search, filters, the pane, a person's page and each of its tabs."""
from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from backoffice.accounts.models import Login, User, UserSession
from backoffice.demo.user_agents import USER_AGENTS
from tests.e2e.conftest import screenshot, seeded_server, sign_in
from tests.factories import make_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

NOW = datetime.now(UTC)
XSS = "<script>alert(1)</script>"
FIRST = ("Alma", "Bjørn", "Clara", "Dag", "Emil", "Frida", "Gustav", "Hanna", "Ivar", "Johanne")
LAST = ("Lund", "Berg", "Dahl", "Holm", "Strand")
AGENTS = [agent for _, _, agent in USER_AGENTS]


def seed(session) -> None:
    """Three accounts of people; Astrid Lund is in two of them, with sign-ins from several devices and sessions."""
    tenants = [make_tenant(session, name=name) for name in ("Nordic Labs", "Harbor Works", XSS)]
    for index in range(36):
        tenant = tenants[index % 3]
        first, last = FIRST[index % 10], LAST[index % 5]
        email = f"{first.lower()}.{last.lower()}{index}@example.com"
        session.add(User(id=f"usr_e2e_{index:02d}", tenant_id=tenant.id, email=email,
                         first_name=first, last_name=last, role=("owner", "admin", "member", "member")[index % 4],
                         email_confirmed=True, created_at=NOW - timedelta(days=100 + index),
                         # At most 27¾ days back: inside the 30 UTC days of "active, 30 days" at any hour of any day.
                         last_seen_at=None if index % 7 == 6 else NOW - timedelta(hours=1 + index * 19)))
    for position, tenant in enumerate(tenants[:2]):
        session.add(User(id=f"usr_astrid_{position}", tenant_id=tenant.id, email="astrid@lund.example", first_name="Astrid",
                         last_name="Lund", role="owner" if position == 0 else "member", email_confirmed=True,
                         last_seen_at=NOW - timedelta(minutes=30 + position), created_at=NOW - timedelta(days=300)))
    session.flush()
    for index in range(60):
        session.add(Login(id=f"lgn_astrid_{index:02d}", user_id="usr_astrid_0", email="astrid@lund.example",
                          method=("google", "one_time_password")[index % 2], outcome="failed" if index % 9 == 4 else "succeeded",
                          ip_address=f"192.0.2.{index + 1}", user_agent=AGENTS[index % len(AGENTS)],
                          created_at=NOW - timedelta(days=index, hours=1)))
    for index in range(4):
        session.add(UserSession(id=f"ses_astrid_{index}", user_id=f"usr_astrid_{index % 2}", tenant_id=tenants[index % 2].id,
                                created_at=NOW - timedelta(days=index * 3), last_active_at=NOW - timedelta(days=index),
                                login_method="google", ip_address="198.51.100.4", user_agent=AGENTS[index],
                                revoked_at=NOW - timedelta(days=1) if index >= 2 else None,
                                revoked_reason="logged_out" if index >= 2 else None))


@pytest.fixture(scope="module")
def users_server(make_app, own_database):
    with seeded_server(make_app, own_database, seed) as url:
        yield url


def emails(page) -> list[str]:
    return page.locator("[data-testid=users] tbody tr td:nth-child(2)").all_inner_texts()


def test_search_filters_sort_and_the_pane(users_server, page):
    alerts = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    sign_in(page, users_server, "/users", "operator")
    assert page.get_by_test_id("result-count").inner_text().startswith("38 results")
    assert emails(page)[:2] == ["astrid@lund.example", "astrid@lund.example"]
    screenshot(page, "users-list")

    page.get_by_label("Search users").fill("harbor")
    page.wait_for_url(re.compile(r"q=harbor"))
    page.wait_for_function("() => document.querySelector('[data-testid=result-count]').innerText.startsWith('13 results')")
    page.get_by_label("Search users").fill("clara dahl")
    page.wait_for_url(re.compile(r"q=clara\+dahl"))
    page.wait_for_function("() => document.querySelectorAll('[data-testid=users] tbody tr').length === 4")
    assert all(email.startswith("clara.dahl") for email in emails(page))

    page.goto(f"{users_server}/users?activity=24h")
    assert page.locator("[data-filter-value='activity=24h']").is_visible()
    page.locator("[data-filter=role] summary").click()
    page.get_by_label("Owner").check()
    page.locator("[data-filter=role]").get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"activity=24h&role=owner|role=owner&activity=24h"))
    page.wait_for_function("() => document.querySelectorAll('[data-testid=users] tbody tr').length === 2")
    screenshot(page, "users-filtered")
    page.locator("[data-filter-value='activity=24h']").click()
    page.wait_for_url(f"{users_server}/users?role=owner")

    page.goto(f"{users_server}/users")
    page.locator("th a[data-sort=name]").click()
    page.wait_for_url(re.compile(r"sort=name"))
    page.wait_for_function("() => document.querySelector('[data-testid=users] tbody td.name-cell a').innerText === 'Alma Lund'")

    page.get_by_label("Search users").fill("astrid")
    page.wait_for_url(re.compile(r"q=astrid"))
    page.wait_for_function("() => document.querySelectorAll('[data-testid=users] tbody tr').length === 2")
    page.wait_for_load_state("networkidle")  # the debounced search has settled: the rows stay put
    rows = page.locator("[data-testid=users] tbody tr")
    rows.nth(0).focus()
    pane = page.get_by_test_id("user-pane")
    pane.wait_for()
    assert pane.locator("h2").inner_text() == "Astrid Lund" and "Harbor Works" in pane.inner_text()
    first = rows.nth(0).get_attribute("data-user")
    page.wait_for_function(f"() => location.search.includes('pane={first}')")
    screenshot(page, "users-pane")
    assert alerts == []


def test_a_person_and_each_tab(users_server, page):
    alerts = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    sign_in(page, users_server, "/users?q=astrid", "operator")
    page.locator("[data-testid=users] tbody tr td.name-cell a").first.click()
    page.wait_for_url(re.compile(r"/users/usr_astrid_\d$"))
    header = page.get_by_test_id("user-header")
    assert header.locator("h1").inner_text() == "Astrid Lund" and "astrid@lund.example" in header.inner_text()
    assert page.locator("[data-kpi=memberships]").get_attribute("data-value") == "2"
    assert page.locator("[data-kpi=active-sessions]").get_attribute("data-value") == "2"
    assert page.locator("[data-kpi=recent-logins]").get_attribute("data-value") == "30"
    memberships = page.get_by_test_id("memberships")
    assert memberships.get_by_role("link", name="Nordic Labs").is_visible()
    assert page.get_by_test_id("recent-logins").locator("tbody tr").count() == 30
    assert page.get_by_test_id("recent-logins").locator("[data-browser]").filter(has_text="Opera").count() > 0
    screenshot(page, "user-tab-overview")
    person_url = page.url

    page.get_by_role("tab", name="Logins").click()
    page.get_by_test_id("tab-logins").wait_for()
    page.wait_for_url(f"{person_url}/logins")
    assert page.get_by_role("tab", name="Logins").get_attribute("aria-selected") == "true"
    assert page.get_by_test_id("result-count").inner_text().startswith("60 results")
    logins = page.get_by_test_id("logins")
    assert logins.locator("tbody tr").count() == 25
    assert logins.locator("[data-device=phone]").count() > 0 and logins.locator("[data-device=desktop]").count() > 0
    screenshot(page, "user-tab-logins")
    page.get_by_role("link", name="Next").click()
    page.wait_for_url(re.compile(r"/logins\?page=2&after="))
    page.wait_for_function("() => document.querySelector('[data-testid=logins] tbody tr').dataset.login === 'lgn_astrid_25'")

    page.get_by_role("tab", name="Sessions").click()
    page.get_by_test_id("tab-sessions").wait_for()
    page.wait_for_url(f"{person_url}/sessions")
    sessions = page.get_by_test_id("sessions")
    assert sessions.locator("tbody tr").count() == 4
    assert sessions.locator(".badge.revoked").count() == 2 and "Logged out" in sessions.inner_text()
    assert "Harbor Works" in sessions.inner_text() and "Nordic Labs" in sessions.inner_text()
    screenshot(page, "user-tab-sessions")

    page.get_by_role("tab", name="Overview").click()
    page.get_by_test_id("tab-overview").wait_for()
    page.wait_for_url(person_url)
    memberships.get_by_role("link", name="Harbor Works").click()
    page.wait_for_url(re.compile(r"/accounts/ten_"))
    assert page.locator("h1").inner_text() == "Harbor Works"
    assert alerts == []


def test_the_dashboard_tiles_lead_to_filtered_users(users_server, page):
    sign_in(page, users_server, "/users?activity=30d", "operator")
    assert page.locator("[data-filter-value='activity=30d']").is_visible()
    assert page.get_by_test_id("result-count").inner_text().startswith("33 results")
    page.goto(f"{users_server}/users?q=script")
    assert XSS in page.locator("[data-testid=users] tbody").inner_text()

"""The shell at 390 px and in the dark (issue 19): every surface fits a phone, the menu opens over the page, the
theme follows the system or the operator's choice, Back restores the search box, flags are SVG with the country's
name. Screenshots of every surface at 1440×900 and 390×844, light and dark, English and Danish."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from backoffice.accounts.models import Tenant, User
from backoffice.extensions import db
from backoffice.operators.models import Operator, OperatorAction
from backoffice.read_models import mrr_daily as rollups
from tests.e2e.conftest import ARTIFACTS, LIVE_SETTINGS, open_operator_menu, serving
from tests.e2e.test_accounts_flows import seed as seed_accounts
from tests.factories import archive_event, make_tenant, new_id

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}
LONG_NAME = "Aktieselskabet Sønderjyllands Forenede Vindmøllelaug og Fjernvarmeværker Internationale Holding"
LONG_TOKEN = "x" * 300
SHOTS = ARTIFACTS / "screenshots"


def seed(session) -> dict[str, str]:
    """The accounts flows' thirty accounts, a tenant with a very long name, a raw event with a very long line, a failed
    event and an audit entry; return the ids the surfaces' URLs need."""
    seed_accounts(session)
    make_tenant(session, name=LONG_NAME, plan="basis", country="FO")
    at = datetime(2026, 3, 1, tzinfo=UTC)
    raw = archive_event(session, id=new_id("evt"), stripe_created_at=at, type="customer.subscription.updated",
                        api_version="2025-03-31.basil",
                        payload={"id": "evt_long", "object": "event", "note": LONG_TOKEN},
                        payload_hash="a" * 64, status="processed")
    archive_event(session, id=new_id("evt"), stripe_created_at=at, type="invoice.paid",
                  api_version="2025-03-31.basil", payload={"id": "evt_failed", "object": "event"},
                  payload_hash="b" * 64, status="failed",
                  error="OperationalError: server closed the connection unexpectedly " + LONG_TOKEN)
    session.add(Operator(id="op-seed", name="Seed Operator", email="seed@backoffice.local", is_admin=True))
    session.flush()
    tenant = session.scalars(select(Tenant).where(Tenant.name == "Nordic Labs")).first()
    session.add(OperatorAction(operator_id="op-seed", action="sync", target_tenant_id=tenant.id,
                               reason="Checking the books " + LONG_TOKEN, parameters={"note": LONG_TOKEN}))
    user = session.scalars(select(User).where(User.tenant_id == tenant.id)).first()
    return {"tenant": tenant.id, "user": user.id, "event": raw.id}


@pytest.fixture(scope="module")
def server(make_app, own_database):
    app = make_app(SQLALCHEMY_DATABASE_URI=own_database, **LIVE_SETTINGS, PUBLIC_SUBSCRIPTION_ENABLED=True)
    with app.app_context():
        ids = seed(db.session)
        rollups.rebuild(db.session, "EUR")
        db.session.commit()
    with serving(app) as url:
        yield url, ids


def surfaces(ids: dict[str, str]) -> dict[str, str]:
    return {
        "dashboard": "/",
        "saas-metrics": "/saas-metrics",
        "accounts": "/accounts",
        "account": f"/accounts/{ids['tenant']}",
        "users": "/users",
        "user": f"/users/{ids['user']}",
        "billing-events": "/billing-events",
        "raw-event": f"/stripe-events/{ids['event']}",
        "invoices": "/invoices",
        "failed-events": "/failed-events",
        "audit": "/audit",
        "jobs": "/jobs",
    }


def open_context(browser, base: str, *, viewport, scheme="light", locale="en-US", who="admin"):
    """A signed-in browser context; the language follows Accept-Language and the theme the system setting."""
    context = browser.new_context(viewport=viewport, color_scheme=scheme, locale=locale)
    page = context.new_page()
    page.goto(f"{base}/dev/login?next=/accounts")
    page.locator(f"button[name=identity][value={who}]").click()
    page.wait_for_url(f"{base}/accounts")
    return context, page


def settle(page) -> None:
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => !document.querySelector('[data-card][data-state=loading]')")


def page_width(page) -> tuple[int, int]:
    return page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")


def background(page) -> str:
    return page.evaluate("() => getComputedStyle(document.documentElement).backgroundColor")


def badge_and_banner(page) -> list[str]:
    """The background of the first role badge and of the first data-quality banner (a failed event raises one)."""
    page.locator(".banner:not(.note)").first.wait_for()
    return page.evaluate("""() => ['.badge[class*=role-]', '.banner:not(.note)'].map(selector => {
        const element = document.querySelector(selector);
        return element ? getComputedStyle(element).backgroundColor : 'missing ' + selector; })""")


def is_dark(rgb: str) -> bool:
    red, green, blue = (int(part) for part in rgb[rgb.index("(") + 1:rgb.index(")")].split(",")[:3])
    return red + green + blue < 3 * 96


def test_every_surface_fits_a_phone(server, browser):
    base, ids = server
    context, page = open_context(browser, base, viewport=PHONE)
    too_wide = {}
    for name, path in surfaces(ids).items():
        page.goto(f"{base}{path}")
        settle(page)
        scroll, inner = page_width(page)
        if scroll > inner:
            too_wide[name] = scroll
    context.close()
    assert too_wide == {}, f"wider than the 390 px screen: {too_wide}"


@pytest.mark.parametrize("javascript", [True, False], ids=["script", "no-script"])
def test_the_menu_opens_over_the_page_and_closes(server, browser, javascript):
    """With JavaScript a button opens the menu; without, a link opens it as the URL's target. Both close by ×."""
    base, ids = server
    context, page = open_context(browser, base, viewport=PHONE)
    if not javascript:
        state = context.storage_state()
        context.close()
        context = browser.new_context(viewport=PHONE, java_script_enabled=False, storage_state=state)
        page = context.new_page()
    page.goto(f"{base}/accounts/{ids['tenant']}")
    menu = page.get_by_role("navigation", name="Main menu")
    assert not menu.is_visible()
    opener = page.get_by_role("button" if javascript else "link", name="Open menu")
    opener.click()
    assert menu.is_visible()
    if javascript:
        assert page.locator(".menu-button").get_attribute("aria-expanded") == "true"
        # Over the page: the menu is the topmost element where it is drawn, banner or not.
        assert page.evaluate("() => { const box = document.querySelector('#side-menu').getBoundingClientRect();"
                             " return document.elementFromPoint(box.left + 20, box.top + 10).closest('#side-menu')"
                             " !== null; }")
        page.keyboard.press("Escape")
        assert not menu.is_visible()
        opener.click()
    else:
        assert page.locator("button.menu-button").is_hidden()  # a button that would do nothing is not shown
        assert page.url.endswith("#side-menu")
    menu.get_by_role("link", name="Close menu").click()
    assert not menu.is_visible()
    if javascript:
        assert page.url.endswith(ids["tenant"])  # no #main: the script closed it
    opener.click()
    menu.get_by_role("link", name="Users").click()
    page.wait_for_url(f"{base}/users")
    assert not menu.is_visible()
    context.close()


def test_long_names_wrap_and_the_actions_menu_stays_on_screen(server, browser):
    base, ids = server
    context, page = open_context(browser, base, viewport=PHONE)
    page.goto(f"{base}/accounts?q=Vindm%C3%B8llelaug")
    settle(page)
    page.get_by_role("link", name=LONG_NAME).click()
    page.wait_for_url(f"{base}/accounts/*")
    settle(page)
    assert page_width(page)[0] <= PHONE["width"]
    page.get_by_test_id("actions-menu").locator("summary").click()
    box = page.get_by_test_id("actions-menu").locator("ul").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    # The side pane's header wraps the long name inside the pane.
    page.goto(f"{base}/accounts?q=Vindm%C3%B8llelaug")
    settle(page)
    page.locator("[data-testid=accounts] tbody tr").first.click()
    header = page.locator("#pane .pane-header")
    header.wait_for()
    pane = page.locator("#pane").bounding_box()
    heading = header.locator("h2").bounding_box()
    assert heading["x"] + heading["width"] <= pane["x"] + pane["width"]
    assert page_width(page)[0] <= PHONE["width"]
    context.close()


def test_flags_are_svg_with_the_country_name(server, browser):
    base, _ids = server
    context, page = open_context(browser, base, viewport=DESKTOP)
    page.goto(f"{base}/accounts?q=Vindm%C3%B8llelaug")
    flag = page.locator("[data-testid=accounts] img.flag").first
    assert flag.get_attribute("alt") == "Faroe Islands"
    assert "/static/vendor/flags/" in flag.get_attribute("src")
    assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", flag.element_handle())
    context.close()
    context, page = open_context(browser, base, viewport=DESKTOP, locale="da-DK")
    page.goto(f"{base}/accounts?q=Vindm%C3%B8llelaug")
    assert page.locator("[data-testid=accounts] img.flag").first.get_attribute("alt") == "Færøerne"
    context.close()


def test_nothing_moves_once_a_page_is_drawn(server, browser):
    """The banners come with the page: what the operator sees at the first paint stays where it is, so a click aimed
    at it lands on it. Only the 60 s poll asks for them again."""
    base, ids = server
    context, page = open_context(browser, base, viewport=DESKTOP)
    asked = []
    page.on("request", lambda request: asked.append(request.url) if "/banners" in request.url else None)
    for name, path in surfaces(ids).items():
        page.goto(f"{base}{path}", wait_until="domcontentloaded")
        drawn = page.evaluate("""() => [document.querySelectorAll('#banners .banner:not(.note)').length,
                                        document.querySelector('.topbar').getBoundingClientRect().top]""")
        settle(page)
        settled = page.evaluate("() => document.querySelector('.topbar').getBoundingClientRect().top")
        assert drawn[0] > 0, f"{name}: no banner drawn with the page"
        assert drawn[1] == settled, f"{name}: the top bar moved from {drawn[1]} to {settled} px after the load"
    assert asked == []
    context.close()


def test_no_favicon_404(server, browser):
    base, _ids = server
    context, page = open_context(browser, base, viewport=DESKTOP)
    missing = []
    page.on("response", lambda response: missing.append(response.url) if response.status == 404 else None)
    page.goto(f"{base}/users")
    settle(page)
    href = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(f"{base}{href}").headers["content-type"].startswith("image/svg+xml")
    assert missing == []
    context.close()


def test_dark_mode_follows_the_system_and_the_preference(server, browser):
    base, _ids = server
    context, page = open_context(browser, base, viewport=DESKTOP, scheme="dark", who="operator")
    page.goto(f"{base}/users")
    assert page.locator("html").get_attribute("data-theme") is None
    assert is_dark(background(page))
    # Badges and banners turn dark with the page instead of staying pastel.
    assert all(is_dark(colour) for colour in badge_and_banner(page)), badge_and_banner(page)

    open_operator_menu(page)
    with page.expect_navigation():  # a form POST that reloads the page
        page.get_by_test_id("theme-switch").get_by_role("button", name="Light").click()
    assert page.locator("html").get_attribute("data-theme") == "light"
    assert not is_dark(background(page))
    assert not any(is_dark(colour) for colour in badge_and_banner(page)), badge_and_banner(page)

    open_operator_menu(page)
    with page.expect_navigation():
        page.get_by_test_id("theme-switch").get_by_role("button", name="Dark").click()
    assert page.locator("html").get_attribute("data-theme") == "dark"
    page.emulate_media(color_scheme="light")
    assert is_dark(background(page))  # the operator's choice wins over the system's
    assert all(is_dark(colour) for colour in badge_and_banner(page)), badge_and_banner(page)

    # Kiosk mode keeps the theme.
    open_operator_menu(page)
    with page.expect_navigation():
        page.get_by_test_id("kiosk-toggle").click()
    assert page.locator("body.kiosk").count() == 1 and is_dark(background(page))
    open_operator_menu(page)
    with page.expect_navigation():
        page.get_by_test_id("kiosk-toggle").click()

    open_operator_menu(page)
    with page.expect_navigation():
        page.get_by_test_id("theme-switch").get_by_role("button", name="System").click()
    assert page.locator("html").get_attribute("data-theme") is None
    assert not is_dark(background(page))
    context.close()


def test_back_restores_the_search_box(server, browser):
    base, _ids = server
    context, page = open_context(browser, base, viewport=DESKTOP)
    page.goto(f"{base}/accounts")
    assert page.get_by_role("link", name="Close menu").is_hidden()  # the phone menu's ×, not on a desktop
    search = page.locator("#list-search")
    search.fill("tundra")
    page.wait_for_url(f"{base}/accounts?q=tundra")
    search.fill("granite")
    page.wait_for_url(f"{base}/accounts?q=granite")
    page.go_back()
    page.wait_for_url(f"{base}/accounts?q=tundra")
    page.wait_for_function("() => document.querySelector('#list-search').value === 'tundra'")
    page.go_back()
    page.wait_for_url(f"{base}/accounts")
    page.wait_for_function("() => document.querySelector('#list-search').value === ''")
    page.go_forward()
    page.wait_for_url(f"{base}/accounts?q=tundra")
    page.wait_for_function("() => document.querySelector('#list-search').value === 'tundra'")
    context.close()


@pytest.mark.parametrize("locale", ["en-US", "da-DK"])
def test_screenshots_of_every_surface(server, browser, locale):
    base, ids = server
    SHOTS.mkdir(parents=True, exist_ok=True)
    language = locale[:2]
    for viewport in (DESKTOP, PHONE):
        for scheme in ("light", "dark"):
            context, page = open_context(browser, base, viewport=viewport, scheme=scheme, locale=locale)
            for name, path in surfaces(ids).items():
                page.goto(f"{base}{path}")
                settle(page)
                page.screenshot(path=str(SHOTS / f"{name}-{viewport['width']}-{scheme}-{language}.png"), full_page=True)
            context.close()

"""Smoke test of the shell in a real browser: dev login, side menu, Kiosk mode, Danish."""
import pytest

from tests.e2e.conftest import open_operator_menu, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]


def test_dev_login_menu_kiosk_and_danish(live_server, page):
    page.goto(f"{live_server}/users")
    assert page.url.startswith(f"{live_server}/dev/login")
    page.get_by_role("button", name="Sign in as admin").click()
    page.wait_for_url(f"{live_server}/users")

    menu = page.get_by_role("navigation", name="Main menu")
    for label in ("Dashboard", "Accounts", "Users", "Billing events", "Invoices"):
        assert menu.get_by_role("link", name=label).is_visible()
    assert menu.get_by_text("Coming soon").is_visible()
    assert page.get_by_role("heading", name="Users", exact=True).is_visible()
    screenshot(page, "shell-users")

    open_operator_menu(page)
    with page.expect_navigation():  # a form POST that reloads the page
        page.get_by_test_id("kiosk-toggle").click()
    assert page.locator("body.kiosk").count() == 1
    assert not menu.is_visible()
    screenshot(page, "shell-kiosk")
    open_operator_menu(page)
    with page.expect_navigation():  # a form POST that reloads the page
        page.get_by_test_id("kiosk-toggle").click()
    assert menu.is_visible()

    open_operator_menu(page)
    with page.expect_navigation():  # a form POST that reloads the page
        page.get_by_role("button", name="Dansk").click()
    assert page.locator("html").get_attribute("lang") == "da"
    assert page.get_by_role("navigation", name="Hovedmenu").get_by_role("link", name="Konti").is_visible()
    screenshot(page, "shell-danish")
    open_operator_menu(page, "Operatørmenu")
    with page.expect_navigation():  # a form POST that reloads the page
        page.get_by_role("button", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"

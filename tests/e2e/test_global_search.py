"""The shell's global search in Chromium: the shortcuts, ids and an address as you type, grouped results, the keyboard."""
from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import screenshot, seeded_server, sign_in
from tests.id_search_data import IDS, seed_ids

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]


@pytest.fixture(scope="module")
def search_server(make_app, own_database):
    with seeded_server(make_app, own_database, seed_ids) as url:
        yield url


def groups(page) -> list[str]:
    return page.locator("#global-search-results [data-kind]").evaluate_all("els => els.map(e => e.dataset.kind)")


def test_shortcuts_ids_and_an_email_find_grouped_results_opened_by_keyboard(search_server, page):
    sign_in(page, search_server, "/users", "operator")
    box = page.locator("#global-search-input")
    results = page.locator("#global-search-results")
    assert results.get_attribute("aria-live") == "polite"
    assert page.locator(".global-search form[role=search]").count() == 1

    page.locator("h1").first.click()
    page.keyboard.press("/")
    assert box.evaluate("el => el === document.activeElement")
    # Typed, not filled: the debounced `input changed` trigger asks once the typing pauses.
    box.press_sequentially(IDS.charge, delay=20)
    results.locator("[data-kind=invoices]").wait_for()
    assert groups(page) == ["accounts", "billing_events", "invoices"]  # a charge is carried by no user
    assert IDS.invoice in results.locator("[data-kind=invoices]").inner_text()
    screenshot(page, "global-search-charge")

    for kind in ("cus", "sub", "in", "re", "cn", "evt"):
        value = {"cus": IDS.customer, "sub": IDS.subscription, "in": IDS.invoice, "re": IDS.refund,
                 "cn": IDS.credit_note, "evt": IDS.paid_event}[kind]
        box.fill(value)
        page.wait_for_function("v => document.querySelector('#global-search-results p.visually-hidden')"
                               "?.innerText.includes(v)", arg=value)
        assert IDS.tenant_name in results.locator("[data-kind=accounts]").inner_text(), kind

    # Escape closes the list first (the words stay), then empties the box.
    page.keyboard.press("Escape")
    assert box.input_value() == IDS.paid_event and results.inner_html().strip() == ""
    assert box.get_attribute("aria-expanded") == "false"
    page.keyboard.press("Escape")
    assert box.input_value() == ""
    page.locator("h1").first.click()
    page.keyboard.press("Control+k")
    assert box.evaluate("el => el === document.activeElement")
    box.press_sequentially(IDS.owner_email, delay=10)
    # The answer to the whole address (the owner's account too), not to a prefix typed before the debounce fired.
    results.locator("[data-kind=users]").wait_for()
    results.locator("[data-kind=accounts]").wait_for()
    assert groups(page)[:2] == ["accounts", "users"]
    screenshot(page, "global-search-email")

    # A combobox: focus stays in the box while the arrow keys move the active option, which screen readers
    # follow through aria-activedescendant; Enter opens it.
    assert box.get_attribute("role") == "combobox" and box.get_attribute("aria-expanded") == "true"
    assert results.locator("[role=listbox] [role=group] [role=option]").count() >= 2

    def active_href() -> str:
        assert page.evaluate("document.activeElement.id") == "global-search-input"
        active = box.get_attribute("aria-activedescendant")
        option = page.locator(f"#{active}")
        assert option.get_attribute("aria-selected") == "true"
        assert results.locator("[aria-selected=true]").count() == 1
        return option.get_attribute("href")

    assert box.get_attribute("aria-activedescendant") is None
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert active_href().startswith("/users/")
    page.keyboard.press("ArrowUp")
    assert active_href() == f"/accounts/{IDS.tenant}"
    page.keyboard.press("ArrowUp")  # past the first option: the box itself again
    assert box.get_attribute("aria-activedescendant") is None
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/accounts/{IDS.tenant}$"))
    assert IDS.tenant_name in page.locator("h1").first.inner_text()


def test_enter_opens_the_search_page_without_waiting(search_server, page):
    sign_in(page, search_server, "/users", "operator")
    page.locator("#global-search-input").fill(IDS.customer)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/search\?q=cus_"))
    assert IDS.tenant_name in page.locator("#search-page-results [data-kind=accounts]").inner_text()


def test_the_box_and_its_results_fit_a_phone(search_server, browser):
    context = browser.new_context(locale="en-US", viewport={"width": 390, "height": 844})
    page = context.new_page()
    try:
        sign_in(page, search_server, "/users", "operator")
        page.locator("#global-search-input").press_sequentially(IDS.customer, delay=10)
        results = page.locator("#global-search-results")
        results.locator("[data-kind=accounts]").wait_for()
        box = results.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
        screenshot(page, "global-search-phone")
    finally:
        context.close()

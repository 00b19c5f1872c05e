"""The README's screenshots, taken from a running `make demo` (http://127.0.0.1:5000) in Debian's Chromium.

    PYTHONPATH=. .venv/bin/python scripts/readme_screenshots.py docs/screenshots
"""
import shutil
import sys

from playwright.sync_api import sync_playwright

from tests.e2e.conftest import CHROMIUM_ARGS

BASE = "http://127.0.0.1:5000"
OUT = sys.argv[1]

with sync_playwright() as playwright:
    browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS, headless=True)
    page = browser.new_context(locale="en-US", viewport={"width": 1440, "height": 900}).new_page()
    page.goto(f"{BASE}/")
    page.get_by_role("button", name="Sign in as admin").click()
    page.wait_for_url(f"{BASE}/")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1500)
    page.screenshot(path=f"{OUT}/dashboard.png")
    page.goto(f"{BASE}/accounts?sort=-mrr")
    page.wait_for_load_state("networkidle")
    rows = page.locator("[data-testid=accounts] tbody tr")
    rows.nth(0).focus()
    page.get_by_test_id("account-pane").wait_for()
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(800)
    page.screenshot(path=f"{OUT}/accounts.png")
    account = rows.nth(0).get_attribute("data-account")
    page.goto(f"{BASE}/accounts/{account}")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(800)
    page.screenshot(path=f"{OUT}/account.png")
    browser.close()

"""Danish in Chromium: the menu never splits a word, times show their zone on hover, and the CSV a browser downloads
keeps "Sønderjylland" and neutralises a formula."""
import csv
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backoffice.accounts.models import User
from backoffice.operators.models import Operator, OperatorAction
from tests.e2e.conftest import browser_tab, open_operator_menu, screenshot, seeded_server, sign_in
from tests.factories import make_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

FORMULA = '=HYPERLINK("http://x","y")'
# How many line boxes each word of a link's text spans: more than one is a word split across lines.
WORD_LINES = """link => {
  const text = [...link.childNodes].find(node => node.nodeType === Node.TEXT_NODE && node.textContent.trim());
  const words = [];
  for (const match of text.textContent.matchAll(/\\S+/g)) {
    const range = document.createRange();
    range.setStart(text, match.index);
    range.setEnd(text, match.index + match[0].length);
    words.push([match[0], new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size]);
  }
  return words;
}"""

ICON_BESIDE_LABEL = """link => {
  const icon = link.querySelector(".icon").getBoundingClientRect();
  const label = [...link.childNodes].find(node => node.nodeType === Node.TEXT_NODE && node.textContent.trim());
  const range = document.createRange();
  range.selectNodeContents(label);
  const first = range.getClientRects()[0];
  return first.top < icon.bottom && icon.top < first.bottom;
}"""


def seed(session):
    now = datetime.now(UTC)
    tenant = make_tenant(session, name="Sønderjylland Sejl ApS", created_at=now - timedelta(days=8))
    make_tenant(session, name=FORMULA)
    session.add(User(id="usr_soren", tenant_id=tenant.id, email="soren@sejl.example", first_name="Søren",
                     role="owner", email_confirmed=True, last_seen_at=now - timedelta(days=8), created_at=now))
    session.add(Operator(id="oid-ada", name="Ada Admin", email="ada@example.com", is_admin=True))
    session.flush()
    session.add(OperatorAction(operator_id="oid-ada", action="disaster_recovery", target_tenant_id=tenant.id,
                               reason="tabt i nedbrud", at=now, parameters={"cutoff": "2026-11-01T00:00:00+00:00"},
                               result={"appended": 1, "recovered": 0, "discrepancies": 2,
                                       "recovery": {"gaps": 1, "baseline": "49.00", "currency": "eur"}}))


@pytest.fixture(scope="module")
def server(make_app, own_database):
    with seeded_server(make_app, own_database, seed) as url:
        yield url


@pytest.fixture
def danish_page(browser):
    with browser_tab(browser, 1440, 900) as tab:
        yield tab


def sign_in_danish(page, server: str, path: str) -> None:
    """Sign in through the (English) development login, then choose Danish once: the operator keeps it."""
    sign_in(page, server, path, who="admin")
    if page.locator("html").get_attribute("lang") != "da":
        open_operator_menu(page)
        with page.expect_navigation():  # a form POST that reloads the page
            page.get_by_role("button", name="Dansk").click()


@pytest.mark.parametrize("width", [1440, 1024])
def test_the_danish_menu_never_splits_a_word(server, danish_page, width):
    danish_page.set_viewport_size({"width": width, "height": 900})
    sign_in_danish(danish_page, server, "/accounts")
    assert danish_page.locator("html").get_attribute("lang") == "da"
    link = danish_page.get_by_role("navigation", name="Hovedmenu").get_by_role("link", name="Faktureringshændelser")
    assert link.is_visible()
    for word, lines in link.evaluate(WORD_LINES):
        assert lines == 1, f"{word!r} is split over {lines} lines"
    # The icon sits beside its label, on the same line, not alone above it.
    assert link.evaluate(ICON_BESIDE_LABEL), "the icon and its label are on separate lines"
    assert link.evaluate("a => a.scrollWidth <= a.clientWidth"), "the label overflows its menu"
    screenshot(danish_page, f"menu-da-{width}")


def test_a_relative_time_shows_the_absolute_time_with_its_zone(server, danish_page):
    sign_in_danish(danish_page, server, "/users/usr_soren")
    seen = danish_page.get_by_test_id("last-seen").locator("time")
    assert seen.inner_text() == "for 1 uge siden"
    assert seen.get_attribute("title").endswith(" UTC") and seen.get_attribute("datetime").endswith("Z")


def test_the_downloaded_csv_keeps_danish_and_neutralises_formulas(server, danish_page):
    sign_in_danish(danish_page, server, "/accounts")
    with danish_page.expect_download() as download:
        danish_page.get_by_role("button", name="Eksportér CSV").or_(
            danish_page.get_by_role("link", name="Eksportér CSV")).first.click()
    body = Path(download.value.path()).read_bytes()
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert sorted(row["name"] for row in rows) == sorted(["Sønderjylland Sejl ApS", "'" + FORMULA])
    assert {row["created_at"][-1] for row in rows} == {"Z"}


def test_the_audit_log_shows_labelled_fields(server, danish_page):
    sign_in_danish(danish_page, server, "/audit")
    result = danish_page.get_by_test_id("audit-result")
    assert result.locator("dt").first.is_visible()
    assert "Katastrofegendannelse" in result.inner_text() and "{" not in result.inner_text()
    assert danish_page.get_by_test_id("audit-parameters").locator("dt").inner_text() != "cutoff"  # a label, not the key
    screenshot(danish_page, "audit-da")

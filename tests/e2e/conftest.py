"""A live server on loopback and Debian's Chromium driven by Playwright."""
import shutil
import threading
from contextlib import contextmanager

import pytest
from werkzeug.serving import make_server

from backoffice.extensions import db
from tests.conftest import ROOT_DIR

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
ARTIFACTS = ROOT_DIR / "test-artifacts"


LIVE_SETTINGS = {"BACKOFFICE_DEV_LOGIN": True, "TRUST_PROXY_HEADERS": False,
                 "BACKOFFICE_ADMINS_GROUP_ID": "backoffice-admins", "TESTING": False}


def read_whole(app):
    """`app` with each response read whole and closed before werkzeug writes it.

    When the browser resets a connection mid-response (a favicon request a navigation cancels), werkzeug's
    development server fails while draining the socket, before it closes the response: a static file's handle
    was then left to the garbage collector, whose ResourceWarning failed whichever test was running. A test's
    pages are small, so nothing is lost by holding each one whole.
    """
    def whole(environ, start_response):
        response = app(environ, start_response)
        try:
            return [b"".join(response)]
        finally:
            if hasattr(response, "close"):
                response.close()
    return whole


@contextmanager
def serving(app):
    """Serve `app` on a free loopback port for the length of the block; yield its base URL."""
    server = make_server("127.0.0.1", 0, read_whole(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        with app.app_context():
            db.engine.dispose()


@contextmanager
def seeded_server(make_app, database_url: str, seed):
    """Serve a demo-like app on `database_url` once `seed(session)` has committed its rows; yield its base URL."""
    app = make_app(SQLALCHEMY_DATABASE_URI=database_url, **LIVE_SETTINGS)
    with app.app_context():
        seed(db.session)
        db.session.commit()
    with serving(app) as url:
        yield url


def sign_in(page, server: str, path: str, who: str = "admin") -> None:
    """Open `path`, sign in through the development login as `who`, and arrive back at `path`."""
    page.goto(f"{server}{path}")
    page.get_by_role("button", name=f"Sign in as {who}").click()
    page.wait_for_url(f"{server}{path}")


@pytest.fixture(scope="session")
def live_server(make_app):
    """Serve a demo-like app (dev login on, proxy headers off) on a free loopback port."""
    with serving(make_app(**LIVE_SETTINGS)) as url:
        yield url


@pytest.fixture(scope="module")
def own_database(pg_server):
    """A database of the test module's own, cloned from the migrated template: data a browser test commits
    stays out of every other test's way, and goes with the database at the end."""
    from tests import pg
    from tests.conftest import _migrate

    template = pg.ensure_template(pg_server, _migrate)
    name = pg.create_run_database(pg_server, template, "e2e")
    yield pg.app_url(pg_server, name)
    pg.drop_database(pg_server, name)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail("Debian's chromium is not installed: run `make test`, which installs it")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@contextmanager
def browser_tab(browser, width: int = 1280, height: int = 800):
    """A page in a fresh context (no cookies) of the given viewport, closed afterwards."""
    context = browser.new_context(locale="en-US", viewport={"width": width, "height": height})
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(browser):
    with browser_tab(browser) as tab:
        yield tab


def settle(page) -> None:
    """Wait until the page's own requests are done (its cards, a pane, a search), so that what a test reads or
    clicks next is what the operator would see."""
    page.wait_for_load_state("networkidle")


def open_operator_menu(page, label: str = "Operator menu") -> None:
    """Open the avatar menu once the page has settled."""
    settle(page)
    page.get_by_label(label).click()
    page.locator("details.avatar-menu[open]").wait_for()


def screenshot(page, name: str) -> None:
    """Keep a screenshot for review under test-artifacts/."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)

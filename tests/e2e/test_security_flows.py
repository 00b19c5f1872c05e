"""Security in Chromium: no page breaks its Content-Security-Policy, a foreign frame is refused, and an expired
session sends the operator to sign in and back."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.e2e.conftest import screenshot, seeded_server, sign_in
from tests.factories import make_subscription, make_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

TENANT = {}
PAGES = ("/", "/accounts", "/users", "/billing-events", "/invoices", "/failed-events", "/jobs", "/audit")


def seed(session) -> None:
    tenant = make_tenant(session, name="Framed ApS")
    make_subscription(session, tenant_id=tenant.id)
    TENANT["id"] = tenant.id


@pytest.fixture(scope="module")
def server(make_app, own_database):
    with seeded_server(make_app, own_database, seed) as url:
        yield url


def _violations(page) -> list[str]:
    """Collect what Chromium says about CSP while the page is used: console errors and violation events."""
    found: list[str] = []
    page.on("console", lambda message: found.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text else None)
    # Init scripts come in through the DevTools protocol, so the policy they watch does not stop them.
    page.add_init_script("document.addEventListener('securitypolicyviolation', e => "
                         "console.error('Refused to: ' + e.violatedDirective + ' ' + e.blockedURI));")
    return found


def test_no_page_breaks_the_content_security_policy(server, page):
    violations = _violations(page)
    sign_in(page, server, "/")
    # The dashboard's cards load by htmx; wait until they have, so their scripts and styles are judged too.
    page.wait_for_function("() => document.querySelectorAll('[data-card][data-state=loading]').length === 0")
    for path in (*PAGES, f"/accounts/{TENANT['id']}", f"/accounts/{TENANT['id']}/invoices"):
        page.goto(f"{server}{path}")
        page.wait_for_load_state("networkidle")
    # htmx at work under the policy: active search swaps the results in place.
    page.goto(f"{server}/accounts")
    with page.expect_response(lambda response: "q=Framed" in response.url):
        page.get_by_label("Search accounts").fill("Framed")
    page.wait_for_function("() => location.search.includes('q=Framed')")
    # The indicator rules come from app.css, not from an inline style htmx would add.
    assert page.evaluate("document.querySelectorAll('head style').length") == 0
    assert violations == []


class _Framer(BaseHTTPRequestHandler):
    target = ""

    def do_GET(self):  # noqa: N802 (the http.server protocol)
        body = f'<!doctype html><title>Another site</title><iframe id="victim" src="{self.target}"></iframe>'.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def framer(server):
    """Another origin on loopback (another port) whose page frames the account page."""
    _Framer.target = f"{server}/accounts/{TENANT['id']}"
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Framer)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/"
    httpd.shutdown()
    httpd.server_close()


def test_a_foreign_frame_is_refused(server, framer, page):
    sign_in(page, server, f"/accounts/{TENANT['id']}")  # signed in: the frame would show the admin's forms
    assert page.get_by_test_id("sync-form").count() == 1
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    page.goto(framer)
    page.wait_for_load_state("networkidle")
    frame = page.frame_locator("#victim")
    assert frame.get_by_test_id("sync-form").count() == 0
    victim = next(child for child in page.main_frame.child_frames)
    assert not victim.url.startswith(server)  # Chromium shows its own error page in the frame's place
    assert any("frame-ancestors" in text or "X-Frame-Options" in text for text in messages), messages
    screenshot(page, "security-framed")


def test_an_expired_session_goes_to_sign_in_and_back(server, page):
    sign_in(page, server, "/accounts", who="operator")
    page.context.clear_cookies()  # the session ends while the page stays open
    page.get_by_label("Search accounts").fill("Fra")
    page.wait_for_url(f"{server}/dev/login?next=%2Faccounts")
    page.get_by_role("button", name="Sign in as operator").click()
    page.wait_for_url(f"{server}/accounts")
    assert page.get_by_label("Search accounts").is_visible()

"""What the console gives away: Stripe links that could run script, CSV cells a spreadsheet would run, other
operators' jobs."""
from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from backoffice.billing.models import PaymentTransaction
from backoffice.jobs import enqueue, job_status
from backoffice.web.csv_export import neutralise
from backoffice.web.formatting import document_url, https_url
from tests.conftest import proxy_headers
from tests.factories import make_subscription, make_tenant, new_id, payment_values

HX = {"HX-Request": "true"}
HTML = {"Accept": "text/html"}
FORMULA = '=HYPERLINK("http://x","y")'


@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
    "http://pay.example/in.pdf", "data:text/html,<script>alert(1)</script>", "//pay.example/in.pdf",
    "https://", "https:///path", "https://pay.example/in\n.pdf", "vbscript:msgbox(1)", "", None,
    "https://pay.stripe-sandbox.invalid/invoices/in_1/pdf", "https://invalid/x",
])
def test_only_https_urls_with_a_host_are_links(url):
    assert https_url(url) is None


def test_https_urls_pass_unchanged():
    stripe = "https://pay.stripe.com/invoice/acct_1/in_1/pdf?s=ap"
    assert https_url(stripe) == stripe
    assert https_url("HTTPS://files.example/cn.pdf") == "HTTPS://files.example/cn.pdf"


SANDBOX_PDF = "https://pay.stripe-sandbox.invalid/invoices/in_1/pdf"


@pytest.mark.parametrize(("url", "api_base", "link"), [
    # A sandbox document opens at the sandbox on loopback, whatever port it serves on.
    (SANDBOX_PDF, "http://127.0.0.1:12111", "http://127.0.0.1:12111/documents/invoices/in_1/pdf"),
    (SANDBOX_PDF, "http://localhost:9/", "http://localhost:9/documents/invoices/in_1/pdf"),
    (SANDBOX_PDF, "http://[::1]:9", "http://[::1]:9/documents/invoices/in_1/pdf"),
    # Not a sandbox on loopback: no link (the reserved host never resolves).
    (SANDBOX_PDF, "https://api.stripe.com", None), (SANDBOX_PDF, "http://10.0.0.5:12111", None),
    (SANDBOX_PDF, None, None), (SANDBOX_PDF + "?x=javascript:1", "http://127.0.0.1:1", None),
    ("https://other.invalid/invoices/in_1/pdf", "http://127.0.0.1:12111", None),
    ("http://pay.stripe-sandbox.invalid/in_1", "http://127.0.0.1:12111", None),
    # Everything else is judged as https_url judges it.
    ("https://pay.stripe.com/invoice/in_1/pdf", "http://127.0.0.1:12111", "https://pay.stripe.com/invoice/in_1/pdf"),
    ("javascript:alert(1)", "http://127.0.0.1:12111", None),
])
def test_document_links(url, api_base, link):
    assert document_url(url, api_base) == link


def test_the_invoice_list_links_a_sandbox_pdf_to_the_configured_sandbox(app, client, data, operator_headers,
                                                                        monkeypatch):
    monkeypatch.setitem(app.config, "STRIPE_API_BASE", "http://127.0.0.1:12111")
    with data() as session:
        tenant = make_tenant(session, name="Sandbox Documents ApS")
        subscription = make_subscription(session, tenant_id=tenant.id)
        session.add(PaymentTransaction(**payment_values(subscription, invoice_url=SANDBOX_PDF)))
        tenant_id = tenant.id
    text = client.get(f"/accounts/{tenant_id}/invoices", headers=operator_headers).get_data(as_text=True)
    assert 'href="http://127.0.0.1:12111/documents/invoices/in_1/pdf"' in text and "Invoice PDF" in text


@pytest.fixture
def hostile_payments(data):
    with data() as session:
        tenant = make_tenant(session, name="Hostile Links ApS")
        subscription = make_subscription(session, tenant_id=tenant.id)
        session.add(PaymentTransaction(**payment_values(subscription, invoice_url="javascript:alert(1)")))
        session.add(PaymentTransaction(**payment_values(subscription, id=new_id("in"),
                                                        invoice_url="http://pay.example/plain.pdf")))
        session.add(PaymentTransaction(**payment_values(subscription, id=new_id("in"),
                                                        invoice_url="https://pay.example/good.pdf")))
        session.add(PaymentTransaction(**payment_values(subscription, id=new_id("in"), status="refunded",
                                                        refunded_amount=Decimal("49.00"),
                                                        credit_note_url="javascript:alert(2)")))
        tenant_id = tenant.id
    return tenant_id


def test_a_javascript_invoice_url_is_never_a_link(client, operator_headers, hostile_payments):
    for url in ("/invoices", f"/accounts/{hostile_payments}/invoices"):
        text = client.get(url, headers=operator_headers).get_data(as_text=True)
        assert "javascript:" not in text and "http://pay.example" not in text
        assert 'href="https://pay.example/good.pdf"' in text
        assert text.count("Invoice PDF") == 1 and "Credit note PDF" not in text


@pytest.mark.parametrize(("value", "written"), [
    (FORMULA, "'" + FORMULA), ("+45 1234", "'+45 1234"), ("-5", "'-5"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\tx", "'\tx"), ("\rx", "'\rx"), ("Acme = good", "Acme = good"), ("", ""),
    (Decimal("-49.00"), Decimal("-49.00")), (-3, -3), (True, True),
])
def test_cells_are_neutralised_by_type(value, written):
    assert neutralise(value) == written


def test_a_formula_tenant_name_is_exported_as_text(client, operator_headers, data):
    with data() as session:
        tenant = make_tenant(session, name=FORMULA)
        make_subscription(session, tenant_id=tenant.id)
    response = client.get("/accounts.csv?q=HYPERLINK", headers=operator_headers)
    rows = list(csv.DictReader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert [row["name"] for row in rows] == ["'" + FORMULA]


def test_a_negative_amount_stays_a_number_in_the_csv(client, operator_headers, hostile_payments):
    rows = list(csv.DictReader(io.StringIO(client.get("/invoices.csv", headers=operator_headers).data.decode("utf-8-sig"))))
    reversals = [row for row in rows if row["kind"] != "invoice"]
    assert reversals and all(row["net_ex_vat"].startswith("-") and Decimal(row["net_ex_vat"]) < 0 for row in reversals)


OTHER_OPERATOR = proxy_headers("other@example.com", display_name="Otto Other")


def _queue(app, owner: str | None) -> str:
    with app.app_context():
        return enqueue("tests.job_tasks.count_to", 3, owner=owner).id


def test_a_job_is_seen_by_its_operator_and_admins_only(app, client, operator_headers, admin_headers):
    mine = _queue(app, "oid-operator@example.com")
    url = f"/accounts/ten_x/sync/{mine}"
    assert client.get(url, headers={**operator_headers, **HX}).status_code == 200
    assert client.get(url, headers={**admin_headers, **HX}).status_code == 200
    # Someone else's job looks exactly like no job: 404, not 403.
    assert client.get(url, headers={**OTHER_OPERATOR, **HX}).status_code == 404
    unowned = _queue(app, None)
    assert client.get(f"/accounts/ten_x/sync/{unowned}", headers={**operator_headers, **HX}).status_code == 404
    assert client.get(f"/accounts/ten_x/sync/{unowned}", headers={**admin_headers, **HX}).status_code == 200


def test_the_account_page_shows_only_the_operators_own_job(app, client, operator_headers, data):
    with data() as session:
        tenant_id = make_tenant(session, name="Job Watch").id
        make_subscription(session, tenant_id=tenant_id)
    other = _queue(app, "oid-other@example.com")
    text = client.get(f"/accounts/{tenant_id}?sync={other}", headers=operator_headers).get_data(as_text=True)
    assert 'data-testid="sync-progress"' not in text and f"/sync/{other}" not in text
    mine = _queue(app, "oid-operator@example.com")
    text = client.get(f"/accounts/{tenant_id}?sync={mine}", headers=operator_headers).get_data(as_text=True)
    assert 'data-testid="sync-progress"' in text


BAD_JOB_IDS = ["x" * 65, "a" * 10_000, "bad.id", "bad%00id", "bad%0d%0aid", "%ff%fe", "..", "a b", "é"]


@pytest.mark.parametrize("job_id", BAD_JOB_IDS)
def test_job_ids_rq_would_refuse_are_404(client, admin_headers, settings, redis_url, job_id):
    settings(REDIS_URL=redis_url)
    response = client.get(f"/accounts/ten_x/sync/{job_id}", headers={**admin_headers, **HX})
    # Control characters are refused for the whole request (400) before the view; any other shape is no such job.
    assert response.status_code == (400 if "%0" in job_id else 404)


def test_the_owner_travels_with_an_rq_job(app, client, operator_headers, settings, redis_url):
    settings(REDIS_URL=redis_url)
    job_id = _queue(app, "oid-operator@example.com")
    with app.app_context():
        assert job_status(job_id).owner == "oid-operator@example.com"
    assert client.get(f"/accounts/ten_x/sync/{job_id}", headers={**operator_headers, **HX}).status_code == 200
    assert client.get(f"/accounts/ten_x/sync/{job_id}", headers={**OTHER_OPERATOR, **HX}).status_code == 404


def test_a_bad_sync_id_on_the_account_page_is_ignored(client, admin_headers, settings, redis_url, data):
    settings(REDIS_URL=redis_url)
    with data() as session:
        tenant_id = make_tenant(session, name="Bad Ids").id
        make_subscription(session, tenant_id=tenant_id)
    for job_id in BAD_JOB_IDS:
        response = client.get(f"/accounts/{tenant_id}", query_string={"sync": job_id}, headers=admin_headers)
        assert response.status_code in (200, 400) and 'data-testid="sync-progress"' not in response.get_data(as_text=True)

"""The sandbox's hosted documents: an invoice's page and PDF, a credit note's PDF, a charge's receipt, found at the
object's own URL moved under the sandbox's address, without an API key, and a 404 for anything else."""
from __future__ import annotations

import re
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from backoffice.stripe_sandbox.documents import DOCUMENTS_HOST, amount, pdf
from backoffice.web.formatting import SANDBOX_DOCUMENTS_HOST
from tests.stripe_sandbox.billing_helpers import make_customer, subscribe


def fetch(server, document_url: str, method: str = "GET") -> tuple[int, str, bytes]:
    """GET the document the object names, at the sandbox's own address; no Authorization header."""
    parts = urlsplit(document_url)
    assert f"{parts.scheme}://{parts.hostname}" == DOCUMENTS_HOST
    request = urllib.request.Request(f"{server.url}/documents{parts.path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers.get_content_type(), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.headers.get_content_type(), error.read()


def pdf_objects(body: bytes) -> dict[int, bytes]:
    """Read the PDF the way a viewer starts to: trailer → startxref → the table → each object at its offset."""
    assert body.startswith(b"%PDF-1.4\n") and body.rstrip().endswith(b"%%EOF")
    xref_at = int(re.search(rb"startxref\n(\d+)\n%%EOF", body).group(1))
    assert body[xref_at:xref_at + 5] == b"xref\n"
    header = re.match(rb"xref\n0 (\d+)\n", body[xref_at:])
    entries = body[xref_at + header.end():].split(b"\n")[: int(header.group(1))]
    assert entries[0] == b"0000000000 65535 f "
    objects = {}
    for number, entry in enumerate(entries[1:], start=1):
        offset = int(entry[:10])
        assert body[offset:].startswith(f"{number} 0 obj\n".encode()), number
        objects[number] = body[offset:body.index(b"endobj", offset)]
    return objects


def shown_text(body: bytes) -> str:
    stream = next(obj for obj in pdf_objects(body).values() if b"stream\n" in obj)
    length = int(re.search(rb"/Length (\d+)", stream).group(1))
    content = stream[stream.index(b"stream\n") + 7:][:length]
    return "\n".join(re.sub(rb"\\(.)", rb"\1", part).decode("cp1252")
                     for part in re.findall(rb"\(((?:[^()\\]|\\.)*)\) Tj", content))


def test_the_web_layer_names_the_sandbox_documents_host():
    assert urlsplit(DOCUMENTS_HOST).hostname == SANDBOX_DOCUMENTS_HOST


def test_a_paid_invoice_has_a_page_and_a_pdf_and_its_charge_a_receipt(sandbox_server, stripe_client, premium):
    customer = make_customer(stripe_client, name="Sønderjysk Vind ApS", email="owner@vind.example")
    invoice = stripe_client.v1.invoices.retrieve(subscribe(stripe_client, customer, premium).latest_invoice)

    status, media, body = fetch(sandbox_server, invoice.invoice_pdf)
    assert (status, media) == (200, "application/pdf")
    text = shown_text(body)
    # 9,900 + 25 % VAT, in the invoice's own currency, with the customer's name in Latin-1 intact.
    assert f"Invoice {invoice.number}" in text and "Billed to: Sønderjysk Vind ApS <owner@vind.example>" in text
    assert "Subtotal: 99.00 EUR" in text and "Tax: 24.75 EUR" in text and "Total: 123.75 EUR" in text
    assert "Amount paid: 123.75 EUR" in text and "Amount due: 0.00 EUR" in text

    status, media, page = fetch(sandbox_server, invoice.hosted_invoice_url)
    assert (status, media) == (200, "text/html")
    assert b"S&#248;nderjysk" in page or "Sønderjysk".encode() in page
    assert f'href="/documents/invoices/{invoice.id}/pdf"'.encode() in page

    payment = stripe_client.v1.invoice_payments.list(params={"invoice": invoice.id}).data[0]
    charge = stripe_client.v1.charges.retrieve(payment.payment.charge)
    status, media, receipt = fetch(sandbox_server, charge.receipt_url)
    assert (status, media) == (200, "text/html") and b"Amount: 123.75 EUR" in receipt


def test_a_credit_note_pdf(sandbox_server, stripe_client, premium):
    invoice = stripe_client.v1.invoices.retrieve(
        subscribe(stripe_client, make_customer(stripe_client), premium).latest_invoice)
    note = stripe_client.v1.credit_notes.create(params={"invoice": invoice.id, "amount": 2000,
                                                        "reason": "product_unsatisfactory"})
    status, media, body = fetch(sandbox_server, note.pdf)
    assert (status, media) == (200, "application/pdf")
    text = shown_text(body)
    assert f"Credit note {note.number}" in text and "Total credited: 20.00 EUR" in text
    assert "Reason: product_unsatisfactory" in text


@pytest.mark.parametrize("path", ["/invoices/in_nothing/pdf", "/invoices/", "/credit_notes/cn_x/pdf", "/receipts/ch_x",
                                  "/customers/cus_x", "/invoices/in_x/pdf/more", "/invoices/in_x/png"])
def test_nothing_else_is_a_document(sandbox_server, path):
    status, _media, _body = fetch(sandbox_server, f"{DOCUMENTS_HOST}{path}")
    assert status == 404


def test_documents_are_read_only_and_the_api_still_wants_its_key(sandbox_server, stripe_client, premium):
    invoice = stripe_client.v1.invoices.retrieve(
        subscribe(stripe_client, make_customer(stripe_client), premium).latest_invoice)
    assert fetch(sandbox_server, invoice.invoice_pdf, method="POST")[0] == 405
    # A customer's id is not a document, and the API beside the documents still answers 401 without a key.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{sandbox_server.url}/v1/invoices/{invoice.id}", timeout=5)
    with refused.value:
        assert refused.value.code == 401


def test_amounts_and_odd_text():
    assert amount(123456, "dkk") == "1,234.56 DKK" and amount(-5, "eur") == "-0.05 EUR" and amount(500, "jpy") == "500 JPY"
    body = pdf("x", ["(parenthesis) \\ back", "Ω not in Latin-1"])
    assert shown_text(body) == "(parenthesis) \\ back\n? not in Latin-1"

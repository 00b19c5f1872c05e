"""The documents Stripe hosts for its objects, as the sandbox serves them: an invoice's page and PDF, a credit
note's PDF and a charge's receipt.

The objects carry these under a reserved host (`DOCUMENTS_HOST`, `.invalid` never resolves) so that the URLs stay
the same whichever port a sandbox runs on; a client that knows it talks to a sandbox asks for the path under
`/documents` of the sandbox's own address. Like Stripe's hosted pages these need no API key: the address is the
secret. The PDF is written by hand (one page of Helvetica text): enough for an operator to open and read.
"""
from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

# Currencies without minor units, for amounts written in documents and line descriptions.
ZERO_DECIMAL_CURRENCIES = frozenset({"bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx",
                                     "vnd", "vuv", "xaf", "xof", "xpf"})
DOCUMENTS_HOST = "https://pay.stripe-sandbox.invalid"
PREFIX = "/documents"

Obj = dict[str, Any]
Lookup = Any  # (object id) -> the object or None


class DocumentMissing(LookupError):
    """No such document: an unknown path, or an object the sandbox does not hold."""


def amount(minor: int | None, currency: str) -> str:
    """An amount in minor units written as `1,234.50 EUR` (no locale: a sandbox document)."""
    minor = minor or 0
    if currency.lower() in ZERO_DECIMAL_CURRENCIES:
        return f"{minor:,} {currency.upper()}"
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole:,}.{cents:02d} {currency.upper()}"


def _date(epoch: int | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d") if epoch else "-"


def invoice_lines(invoice: Obj) -> list[str]:
    """The invoice as lines of text: who, what, how much, and its state."""
    currency = invoice["currency"]
    lines = [
        f"Invoice {invoice.get('number') or invoice['id']}",
        f"Billed to: {invoice.get('customer_name') or invoice['customer']} <{invoice.get('customer_email') or '-'}>",
        f"Date: {_date(invoice.get('effective_at') or invoice.get('created'))}   Status: {invoice['status']}",
        "",
    ]
    for line in invoice["lines"]["data"]:
        period = line.get("period") or {}
        lines.append(f"{line.get('description') or '-'}  ({_date(period.get('start'))} to {_date(period.get('end'))})"
                     f"  {amount(line['amount'], currency)}")
    lines += [
        "",
        f"Subtotal: {amount(invoice.get('subtotal'), currency)}",
        *(f"Tax: {amount(tax['amount'], currency)}" for tax in invoice.get("total_taxes") or []),
        f"Total: {amount(invoice.get('total'), currency)}",
        f"Amount paid: {amount(invoice.get('amount_paid'), currency)}",
        f"Amount due: {amount(invoice.get('amount_remaining'), currency)}",
        "",
        f"{invoice['id']} - a document of the Stripe sandbox, not a tax invoice.",
    ]
    return lines


def credit_note_lines(note: Obj) -> list[str]:
    currency = note["currency"]
    return [
        f"Credit note {note.get('number') or note['id']}",
        f"Invoice: {note['invoice']}   Customer: {note['customer']}",
        f"Date: {_date(note.get('created'))}   Reason: {note.get('reason') or '-'}   Status: {note['status']}",
        "",
        *(f"{line.get('description') or '-'}  {amount(line['amount'], currency)}" for line in note["lines"]["data"]),
        "",
        f"Total credited: {amount(note['total'], currency)}",
        "",
        f"{note['id']} - a document of the Stripe sandbox.",
    ]


def receipt_lines(charge: Obj) -> list[str]:
    currency = charge["currency"]
    return [
        f"Receipt for {charge['id']}",
        f"Date: {_date(charge.get('created'))}   Status: {charge['status']}",
        f"Amount: {amount(charge['amount'], currency)}   Refunded: {amount(charge.get('amount_refunded'), currency)}",
        f"Invoice: {charge.get('invoice') or '-'}",
    ]


def _pdf_text(text: str) -> bytes:
    # WinAnsi covers Danish and the other Latin-1 letters; anything else is a question mark, never an error.
    raw = text.encode("cp1252", "replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def pdf(title: str, lines: list[str]) -> bytes:
    """One A4 page of text, a valid PDF 1.4 file (objects, cross-reference table and trailer)."""
    content = [b"BT /F1 11 Tf 14 TL 56 790 Td"]
    content += [b"(" + _pdf_text(line) + b") Tj T*" for line in lines[:52]]
    content.append(b"ET")
    stream = b"\n".join(content)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Title (" + _pdf_text(title) + b") /Producer (Stripe sandbox) >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += (f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R /Info {len(objects)} 0 R >>\n"
            f"startxref\n{xref}\n%%EOF\n").encode()
    return bytes(out)


def page(title: str, lines: list[str], pdf_path: str | None) -> bytes:
    """A plain HTML page of the same lines, with a link to the PDF when there is one."""
    body = "".join(f"<p>{html.escape(line)}</p>" if line else "<hr>" for line in lines)
    link = f'<p><a href="{html.escape(pdf_path)}">Download PDF</a></p>' if pdf_path else ""
    return (f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<body style='font-family:sans-serif;max-width:40rem;margin:2rem auto'>"
            f"<h1>{html.escape(title)}</h1>{body}{link}</body></html>").encode()


def render(path: str, lookup: Lookup) -> tuple[bytes, str]:
    """The document at `path` (under PREFIX) as (body, media type); DocumentMissing when there is none."""
    parts = path.removeprefix(PREFIX).strip("/").split("/")
    kind, object_id, want_pdf = parts[0], parts[1] if len(parts) > 1 else "", parts[2:] == ["pdf"]
    if len(parts) > 3 or (len(parts) == 3 and not want_pdf):
        raise DocumentMissing(path)
    found = lookup(object_id) if object_id else None
    expected = {"invoices": "invoice", "credit_notes": "credit_note", "receipts": "charge"}.get(kind)
    if found is None or expected is None or found.get("object") != expected:
        raise DocumentMissing(path)
    if kind == "invoices" and found.get("status") != "draft":
        title, lines = f"Invoice {found.get('number') or found['id']}", invoice_lines(found)
        return ((pdf(title, lines), "application/pdf") if want_pdf
                else (page(title, lines, f"{PREFIX}/invoices/{found['id']}/pdf"), "text/html"))
    if kind == "credit_notes" and want_pdf:
        return pdf(f"Credit note {found.get('number') or found['id']}", credit_note_lines(found)), "application/pdf"
    if kind == "receipts" and not want_pdf:
        return page(f"Receipt {found['id']}", receipt_lines(found), None), "text/html"
    raise DocumentMissing(path)

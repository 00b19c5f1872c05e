"""/invoices: every invoice, refund and credit note across accounts, as the dual-row projection."""
from __future__ import annotations

from flask import Blueprint, abort, current_app

from backoffice.billing.lists import invoices
from backoffice.extensions import db
from backoffice.web.csv_export import csv_response
from backoffice.web.htmx import render_list
from backoffice.web.listing import CURRENCY_CODES, ListParams, ListSpec, fetch_or_400

bp = Blueprint("invoices", __name__)

LIST = ListSpec("invoices.index", sorts=("date", "account", "amount"), default_sort="-date",
                single={"kind": invoices.KINDS}, multi={"currency": CURRENCY_CODES}, max_values={"currency": 20},
                csv_endpoint="invoices.export")
CSV_HEADER = ("row_key", "kind", "date", "account_id", "account", "status", "plan", "net_ex_vat", "amount_from_credit",
              "tax", "invoice_total", "currency", "invoice_url", "credit_note_url", "transaction_id")


@bp.before_request
def billing_only():
    if not current_app.config["PUBLIC_SUBSCRIPTION_ENABLED"]:
        abort(404)


def invoice_filter(params: ListParams) -> invoices.InvoiceFilter:
    return invoices.InvoiceFilter(search=params.search, kind=params.choice("kind"), currencies=params.values("currency"))


@bp.get("/invoices")
def index():
    """Invoices, refunds and credit notes across accounts: pills, search by account, totals of the filtered rows."""
    params = ListParams.from_request(LIST)
    criteria = invoice_filter(params)
    page = fetch_or_400(lambda: invoices.list_invoice_rows(
        db.session, criteria, sort=params.sort, descending=params.descending, page=params.page,
        per_page=params.per_page, after=params.after))
    return render_list("invoices/index.html", "invoices/_results.html", params.current_url(), params=params, page=page,
                       totals=invoices.invoice_totals(db.session, criteria),
                       currencies=invoices.currencies_billed(db.session))


@bp.get("/invoices.csv")
def export():
    """The filtered rows, in the list's order, as CSV."""
    params = ListParams.from_request(LIST)
    rows = invoices.stream_invoice_rows(db.session, invoice_filter(params), sort=params.sort,
                                        descending=params.descending)
    return csv_response("invoices.csv", CSV_HEADER, (
        [row.key, row.kind, row.date, row.tenant_id, row.tenant_name, row.status, row.plan, row.amount,
         row.amount_from_credit, row.tax_amount, row.invoice_total, row.currency, row.invoice_url, row.credit_note_url,
         row.transaction_id] for row in rows))

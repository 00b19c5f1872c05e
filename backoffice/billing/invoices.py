"""The invoice list's dual-row projection (reference §6): every invoice keeps its original outcome, and a
credit note or a refund of it is a row of its own, on its own day.

One invoice row per payment transaction (a refunded one shows as succeeded, what happened at the time);
plus a credit-note row (dated credit_noted_at ?? refunded_at ?? date) when there is a credit note, else a
refund row (dated refunded_at ?? date) when it was refunded. `amount` is net revenue ex-VAT, negative on
reversal rows, so the counted rows of an account sum to its lifetime value; `invoice_total` is what the
invoice asked for, VAT included. Keys are stable: the transaction id and the row's kind.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from backoffice import search
from backoffice.accounts.models import Tenant
from backoffice.billing.models import PaymentTransaction
from backoffice.paging import LONG_LIST_COUNT_CAP, Page, SortKey, fetch_page, stream_rows, with_keys

PAYMENTS = PaymentTransaction.__table__
TENANTS = Tenant.__table__
KINDS = ("invoices", "reversals")
COUNTED = ("succeeded", "refunded")


@dataclass(frozen=True)
class InvoiceFilter:
    tenant_id: str | None = None
    search: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class InvoiceRow:
    key: str
    kind: str  # invoice | credit_note | refund
    transaction_id: str
    tenant_id: str
    tenant_name: str
    date: datetime
    status: str
    amount: Decimal
    invoice_total: Decimal
    tax_amount: Decimal
    amount_from_credit: Decimal
    currency: str
    plan: str | None
    invoice_url: str | None
    credit_note_url: str | None
    failure_reason: str | None


def _rows() -> Any:
    def part(kind: str, date, status, amount, total, tax, from_credit):
        return select(
            (PAYMENTS.c.id + ":" + kind).label("key"), literal(kind).label("kind"), PAYMENTS.c.id.label("transaction_id"),
            PAYMENTS.c.tenant_id, TENANTS.c.name.label("tenant_name"), date.label("date"), status.label("status"),
            amount.label("amount"), total.label("invoice_total"), tax.label("tax_amount"),
            from_credit.label("amount_from_credit"), PAYMENTS.c.currency, PAYMENTS.c.plan, PAYMENTS.c.invoice_url,
            PAYMENTS.c.credit_note_url, PAYMENTS.c.failure_reason,
        ).select_from(PAYMENTS.join(TENANTS, TENANTS.c.id == PAYMENTS.c.tenant_id)).where(TENANTS.c.deleted_at.is_(None))

    zero = literal(Decimal("0.00"))
    original = func.coalesce(func.nullif(PAYMENTS.c.status, "refunded"), "succeeded")
    # A refund beside a credit note is part of the same reversal: the credit-note row carries both.
    credited = -(PAYMENTS.c.credited_amount + PAYMENTS.c.refunded_amount)
    refunded = -PAYMENTS.c.refunded_amount
    return union_all(
        part("invoice", PAYMENTS.c.date, original, PAYMENTS.c.amount_excluding_tax, PAYMENTS.c.invoice_total,
             PAYMENTS.c.tax_amount, PAYMENTS.c.amount_from_credit),
        part("credit_note", func.coalesce(PAYMENTS.c.credit_noted_at, PAYMENTS.c.refunded_at, PAYMENTS.c.date),
             literal("refunded"), credited, zero, zero, zero)
        .where(PAYMENTS.c.credit_note_url.is_not(None)),
        part("refund", func.coalesce(PAYMENTS.c.refunded_at, PAYMENTS.c.date), literal("refunded"), refunded,
             zero, zero, zero)
        .where(PAYMENTS.c.credit_note_url.is_(None),
               or_(PAYMENTS.c.status == "refunded", PAYMENTS.c.refunded_at.is_not(None))),
    ).subquery("invoice_rows")


def _query(criteria: InvoiceFilter) -> tuple[Select, Any]:
    rows = _rows()
    query = select(*rows.c)
    if criteria.tenant_id is not None:
        query = query.where(rows.c.tenant_id == criteria.tenant_id)
    if criteria.search:
        query = query.where(search.contains(rows.c.tenant_name, criteria.search))
    if criteria.kind == "invoices":
        query = query.where(rows.c.kind == "invoice")
    elif criteria.kind == "reversals":
        query = query.where(rows.c.kind != "invoice")
    return query, rows


def _keys(rows: Any, sort: str, descending: bool) -> list[SortKey]:
    tie = [SortKey(rows.c.key, descending)]
    by_field = {
        "date": [SortKey(rows.c.date, descending), *tie],
        "account": [SortKey(func.lower(rows.c.tenant_name), descending), SortKey(rows.c.date, True), SortKey(rows.c.key)],
        "amount": [SortKey(rows.c.amount, descending), SortKey(rows.c.date, True), SortKey(rows.c.key)],
    }
    if sort not in by_field:
        raise ValueError(f"unknown sort {sort!r}")
    return by_field[sort]


def _to_row(row: Any) -> InvoiceRow:
    return InvoiceRow(*row[:len(InvoiceRow.__dataclass_fields__)])


def list_invoice_rows(session: Session, criteria: InvoiceFilter, *, sort: str = "date", descending: bool = True,
                      page: int = 1, per_page: int = 25, after: str | None = None) -> Page[InvoiceRow]:
    """One page of invoice, credit-note and refund rows."""
    query, rows = _query(criteria)
    keys = _keys(rows, sort, descending)
    return fetch_page(session, with_keys(query, keys), keys, page=page, per_page=per_page, after=after, to_row=_to_row,
                      count_limit=LONG_LIST_COUNT_CAP)


def stream_invoice_rows(session: Session, criteria: InvoiceFilter, *, sort: str = "date",
                        descending: bool = True) -> Iterator[InvoiceRow]:
    query, rows = _query(criteria)
    keys = _keys(rows, sort, descending)
    return stream_rows(session, with_keys(query, keys), keys, to_row=_to_row)


def invoice_totals(session: Session, criteria: InvoiceFilter) -> dict[str, Decimal]:
    """Net revenue per currency over the filtered rows: paid invoices less what was taken back."""
    query, rows = _query(criteria)
    counted = query.where(rows.c.status.in_(COUNTED)).subquery()
    return dict(session.execute(select(counted.c.currency, func.sum(counted.c.amount)).group_by(counted.c.currency)).all())

"""The invoice list's dual-row projection (reference §6): every invoice keeps its original outcome, and a
credit note or a refund of it is a row of its own, on its own day.

One invoice row per payment transaction (a refunded one shows as succeeded, what happened at the time);
plus a credit-note row (dated credit_noted_at ?? refunded_at ?? date) when there is a credit note, else a
refund row (dated refunded_at ?? date) when it was refunded. `amount` is net revenue ex-VAT, negative on
reversal rows, so the counted rows of an account sum to its lifetime value; `invoice_total` is what the
invoice asked for, VAT included. Keys are stable: the transaction id and the row's kind.

The database projects the rows (migration 0011: `invoice_rows`, kept by triggers on payment_transactions), so
that the list reads a page from an index instead of sorting the union of every transaction's rows.

Soft-deleted accounts: their rows are not listed (a cross-tenant list leaves them out, DESIGN §3), but their
money stays in the total, as in the dashboard's Total revenue tile, and the total says how much of it is theirs.
So the unfiltered total equals the tile.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, case, distinct, func, literal, select
from sqlalchemy.orm import Session

from backoffice import search
from backoffice.accounts.models import Tenant
from backoffice.billing.lists.lookup import Carriers, find_carriers
from backoffice.billing.models import (
    COUNTED_PAYMENT_STATUSES,
    InvoiceListRow,
    InvoiceTotal,
    PaymentTransaction,
)
from backoffice.paging import LONG_LIST_COUNT_CAP, Page, SortKey, fetch_page, stream_rows, with_keys

PAYMENTS = PaymentTransaction.__table__
ROWS = InvoiceListRow.__table__
TOTALS = InvoiceTotal.__table__
TENANTS = Tenant.__table__
KINDS = ("invoices", "reversals")
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class InvoiceFilter:
    tenant_id: str | None = None
    search: str | None = None
    kind: str | None = None
    carriers: Carriers | None = None  # what the search names, when the caller has looked it up already
    currencies: tuple[str, ...] = ()  # ISO codes; none: every currency


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


@dataclass(frozen=True)
class Totals:
    """Net revenue ex-VAT of the filtered rows in one currency: the listed rows', and the soft-deleted accounts'
    rows that match the filter but are not listed."""

    listed: Decimal
    deleted: Decimal = ZERO
    deleted_accounts: int = 0

    @property
    def amount(self) -> Decimal:
        """The total, deleted accounts included (the Total revenue tile's population)."""
        return self.listed + self.deleted


def _deleted_accounts() -> Select:
    """The few soft-deleted accounts, as a hashed list (an index of their own), not a join per row."""
    return select(TENANTS.c.id).where(TENANTS.c.deleted_at.is_not(None))


def _conditions(criteria: InvoiceFilter, carriers: Carriers | None, table: Any = ROWS, *,
                listed_only: bool = True) -> list[Any]:
    """The filters, on the read model (or its totals) alone; deleted accounts are left out unless asked for. A whole
    id or email (`carriers`) finds the invoices it names (their credit-note and refund rows too), or the rows of the
    account it names, by equality."""
    conditions: list[Any] = [table.c.tenant_id.not_in(_deleted_accounts())] if listed_only else []
    if criteria.tenant_id is not None:
        conditions.append(table.c.tenant_id == criteria.tenant_id)
    if carriers is not None and carriers.names_objects:
        conditions.append(table.c.transaction_id.in_(sorted(carriers.invoices)))
    elif carriers is not None:
        conditions.append(table.c.tenant_id.in_(sorted(carriers.tenants)))
    elif criteria.search:
        conditions.append(table.c.tenant_id.in_(select(TENANTS.c.id).where(search.contains(TENANTS.c.name,
                                                                                          criteria.search))))
    if criteria.kind == "invoices":
        conditions.append(table.c.kind == "invoice")
    elif criteria.kind == "reversals":
        conditions.append(table.c.kind != "invoice")
    if criteria.currencies:
        conditions.append(table.c.currency.in_(criteria.currencies))
    return conditions


def currencies_billed(session: Session) -> list[str]:
    """The currencies the invoices are in (the currency filter's choices), from the totals' small table."""
    return sorted(session.scalars(select(TOTALS.c.currency).distinct()))


def _narrow(criteria: InvoiceFilter, carriers: Carriers | None) -> Select:
    """What finds and orders the rows: the read model's key."""
    return select(ROWS.c.key).where(*_conditions(criteria, carriers))


def _keys(sort: str, descending: bool) -> list[SortKey]:
    tie = [SortKey(ROWS.c.key, descending)]
    by_field = {
        "date": [SortKey(ROWS.c.date, descending), *tie],
        "account": [SortKey(ROWS.c.account_key, descending), SortKey(ROWS.c.date, True), SortKey(ROWS.c.key)],
        "amount": [SortKey(ROWS.c.amount, descending), SortKey(ROWS.c.date, True), SortKey(ROWS.c.key)],
    }
    if sort not in by_field:
        raise ValueError(f"unknown sort {sort!r}")
    return by_field[sort]


def _hydrate(session: Session) -> Any:
    """Read a page's whole rows by key, in the page's order: the invoice's figures and the account's name."""
    zero = literal(Decimal("0.00"))
    invoice = ROWS.c.kind == "invoice"

    def whole(narrow: list[Any]) -> list[Any]:
        keys = [row[0] for row in narrow]
        found = {row.key: row for row in session.execute(select(
            ROWS.c.key, ROWS.c.kind, ROWS.c.transaction_id, ROWS.c.tenant_id, TENANTS.c.name, ROWS.c.date,
            ROWS.c.status, ROWS.c.amount,
            # What the invoice asked for belongs to the invoice row; a reversal row carries only what it took back.
            case((invoice, PAYMENTS.c.invoice_total), else_=zero), case((invoice, PAYMENTS.c.tax_amount), else_=zero),
            case((invoice, PAYMENTS.c.amount_from_credit), else_=zero),
            ROWS.c.currency, PAYMENTS.c.plan, PAYMENTS.c.invoice_url, PAYMENTS.c.credit_note_url,
            PAYMENTS.c.failure_reason,
        ).join(PAYMENTS, PAYMENTS.c.id == ROWS.c.transaction_id).join(TENANTS, TENANTS.c.id == ROWS.c.tenant_id)
            .where(ROWS.c.key.in_(keys)))}
        return [found[key] for key in keys]
    return whole


def _to_row(row: Any) -> InvoiceRow:
    return InvoiceRow(*row[:len(InvoiceRow.__dataclass_fields__)])


def list_invoice_rows(session: Session, criteria: InvoiceFilter, *, sort: str = "date", descending: bool = True,
                      page: int = 1, per_page: int = 25, after: str | None = None) -> Page[InvoiceRow]:
    """One page of invoice, credit-note and refund rows: found and ordered in the read model, then read whole."""
    keys = _keys(sort, descending)
    narrow = _narrow(criteria, find_carriers(session, criteria.search, criteria.carriers))
    return fetch_page(session, with_keys(narrow, keys), keys, page=page, per_page=per_page, after=after,
                      to_row=_to_row, hydrate=_hydrate(session), count_limit=LONG_LIST_COUNT_CAP)


def stream_invoice_rows(session: Session, criteria: InvoiceFilter, *, sort: str = "date",
                        descending: bool = True) -> Iterator[InvoiceRow]:
    keys = _keys(sort, descending)
    return stream_rows(session, with_keys(_narrow(criteria, find_carriers(session, criteria.search, criteria.carriers)),
                                          keys), keys,
                       to_row=_to_row, hydrate=_hydrate(session))


def invoice_totals(session: Session, criteria: InvoiceFilter) -> dict[str, Totals]:
    """Net revenue per currency over the filtered rows: paid invoices less what was taken back (summed per
    account by the database, migration 0013), with the deleted accounts' share apart. Named invoices (a pasted
    invoice, charge, refund or credit-note id) are few rows, summed from the rows themselves."""
    carriers = find_carriers(session, criteria.search, criteria.carriers)
    table = ROWS if carriers is not None and carriers.names_objects else TOTALS
    deleted = table.c.tenant_id.in_(_deleted_accounts())
    counted = [ROWS.c.status.in_(COUNTED_PAYMENT_STATUSES)] if table is ROWS else []
    rows = session.execute(
        select(table.c.currency, func.coalesce(func.sum(table.c.amount).filter(~deleted), ZERO),
               func.coalesce(func.sum(table.c.amount).filter(deleted), ZERO),
               func.count(distinct(table.c.tenant_id)).filter(deleted, table.c.amount != 0))
        .where(*_conditions(criteria, carriers, table, listed_only=False), *counted)
        .group_by(table.c.currency)).all()
    return {currency: Totals(listed, gone, accounts) for currency, listed, gone, accounts in rows}


def deleted_accounts_revenue(session: Session, currency: str) -> Decimal:
    """The soft-deleted accounts' net revenue: what the Total revenue tile and the unfiltered Invoices total
    count beyond the listed rows (read for the few deleted accounts only, by the totals' key)."""
    return session.scalar(select(func.coalesce(func.sum(TOTALS.c.amount), ZERO))
                          .where(TOTALS.c.tenant_id.in_(_deleted_accounts()), TOTALS.c.currency == currency))

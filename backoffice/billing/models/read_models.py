"""Tables derived from the ledger and the archive, kept by triggers or the replay (docs/read-models.md)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.billing.lists.lenses import partial_indexes
from backoffice.billing.models.columns import (
    MONEY,
    MOVEMENTS,
    TIMESTAMP,
    _currency_check,
    _one_of,
)
from backoffice.extensions import db


class MrrDaily(db.Model):
    """Σ MRR deltas per day, currency and movement; rebuildable from the ledger."""

    __tablename__ = "mrr_daily"
    __table_args__ = (
        sa.CheckConstraint(_currency_check("currency"), name="currency"),
        sa.CheckConstraint(_one_of("movement", MOVEMENTS), name="movement"),
        sa.CheckConstraint("event_count >= 0", name="event_count_non_negative"),
    )

    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    currency: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    movement: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    delta_sum: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    event_count: Mapped[int] = mapped_column(sa.Integer, server_default="0")


class LedgerIndex(db.Model):
    """The billing events list's read model: each ledger row's effective type, movement and place, narrow.

    Triggers on billing_events and billing_event_corrections write it (migration 0008); nothing else does.
    """

    __tablename__ = "ledger_index"
    __table_args__ = (
        sa.Index("ix_ledger_index_newest", sa.text("occurred_at DESC"), sa.text("position DESC"),
                 sa.text("billing_event_id DESC"), postgresql_include=["tenant_id", "event_type", "movement"],
                 postgresql_where=sa.text("event_type <> 'NoOp'")),
        sa.Index("ix_ledger_index_tenant_newest", "tenant_id", sa.text("occurred_at DESC"), sa.text("position DESC"),
                 sa.text("billing_event_id DESC"), postgresql_include=["event_type", "movement"],
                 postgresql_where=sa.text("event_type <> 'NoOp'")),
        *(sa.Index(name, sa.text("occurred_at DESC"), sa.text("position DESC"), sa.text("billing_event_id DESC"),
                   postgresql_include=["tenant_id", "event_type", "movement"], postgresql_where=sa.text(where))
          for name, where in partial_indexes().items()),
        sa.Index("ix_ledger_index_account", "account_key", sa.text("occurred_at DESC"), sa.text("position DESC"),
                 sa.text("billing_event_id DESC"), postgresql_include=["tenant_id", "event_type", "movement"],
                 postgresql_where=sa.text("event_type <> 'NoOp'")),
    )

    # No foreign key (migration 0029): only the ledger's trigger writes a row, for a ledger row that is never deleted.
    billing_event_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    currency: Mapped[str | None] = mapped_column(sa.Text)  # the row's billing currency (the currency filter)
    occurred_at: Mapped[datetime] = mapped_column(TIMESTAMP)
    position: Mapped[int] = mapped_column(sa.Integer)
    event_type: Mapped[str] = mapped_column(sa.Text)
    movement: Mapped[str | None] = mapped_column(sa.Text)
    # The account's name as the list sorts it (lower-cased); a trigger on tenants follows renames (migration 0012).
    account_key: Mapped[str] = mapped_column(sa.Text)


class LedgerTip(db.Model):
    """Each subscription's latest effective ledger row per currency: the committed MRR the MRR consistency
    banner sums. Triggers on billing_events and billing_event_corrections write it (migration 0010)."""

    __tablename__ = "ledger_tips"

    subscription_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    currency: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    committed_mrr: Mapped[Decimal] = mapped_column(MONEY)
    occurred_at: Mapped[datetime] = mapped_column(TIMESTAMP)
    position: Mapped[int] = mapped_column(sa.Integer)


class AccountMonth(db.Model):
    """Each subscription's metric MRR in each month it moved: start, end, the month's movements, the next month it
    moved and its cohort (read_models/account_months.py). Triggers on billing_events and billing_event_corrections
    write it (migration 0018)."""

    __tablename__ = "account_months"
    __table_args__ = (
        sa.Index(None, "month"),
        sa.Index(None, "cohort", "month"),
        # The rows live at the end of a month (read/saas_metrics.py, _active_at): the accounts then, not the history.
        sa.Index("ix_account_months_active", sa.text("daterange(month, next_month)"), postgresql_using="gist"),
        sa.CheckConstraint(_currency_check("currency"), name="currency"),
    )

    subscription_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    month: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    currency: Mapped[str] = mapped_column(sa.Text)
    mrr_start: Mapped[Decimal] = mapped_column(MONEY)
    mrr_end: Mapped[Decimal] = mapped_column(MONEY)
    new: Mapped[Decimal] = mapped_column(MONEY)
    expansion: Mapped[Decimal] = mapped_column(MONEY)
    contraction: Mapped[Decimal] = mapped_column(MONEY)
    churn: Mapped[Decimal] = mapped_column(MONEY)
    reactivation: Mapped[Decimal] = mapped_column(MONEY)
    other: Mapped[Decimal] = mapped_column(MONEY)
    next_month: Mapped[date | None] = mapped_column(sa.Date)
    cohort: Mapped[date | None] = mapped_column(sa.Date)


# account_months summed per month and billing currency, as appended changes: a month's figures are its rows' sums,
# and the MRR and paying accounts at its end the sums of every row up to it (read_models/account_month_totals.py).
# Rows are appended, never updated, so that concurrent replays never wait for each other here; a periodic
# compaction folds each key's rows into one (migration 0022). No primary key: a key has several rows until then.
account_month_totals = sa.Table(
    "account_month_totals",
    db.metadata,
    sa.Column("month", sa.Date, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("mrr", MONEY, nullable=False),  # Σ (MRR at the month's end − at its start)
    sa.Column("paying_mrr", MONEY, nullable=False),  # the same over positive MRR only: the paying accounts' MRR
    sa.Column("paying", sa.Integer, nullable=False),  # accounts paying at the month's end − at its start
    *(sa.Column(name, MONEY, nullable=False) for name in ("new", "expansion", "contraction", "churn", "reactivation",
                                                          "other")),
    sa.Column("churned", sa.Integer, nullable=False),  # paying at the start, not at the end
    sa.Column("new_logos", sa.Integer, nullable=False),  # paying at the end, not at the start
    # Of the accounts paying at the start: the change in their MRR, and its losses alone.
    sa.Column("retained_change", MONEY, nullable=False),
    sa.Column("retained_loss", MONEY, nullable=False),
    sa.Index("ix_account_month_totals_month", "month"),
    sa.CheckConstraint(_currency_check("currency"), name="currency"),
)


class InvoiceListRow(db.Model):
    """The invoices list's read model: one row per row of the dual-row projection (billing/lists/invoices.py), narrow.

    Triggers on payment_transactions write it (migration 0011); nothing else does.
    """

    __tablename__ = "invoice_rows"
    __table_args__ = (
        sa.Index(None, "transaction_id"),
        # Each includes the account: leaving deleted accounts out, counting and deep pages read the index alone.
        sa.Index("ix_invoice_rows_date", sa.text("date DESC"), sa.text("key DESC"), postgresql_include=["tenant_id"]),
        sa.Index("ix_invoice_rows_date_invoices", sa.text("date DESC"), sa.text("key DESC"),
                 postgresql_include=["tenant_id"], postgresql_where=sa.text("kind = 'invoice'")),
        sa.Index("ix_invoice_rows_date_reversals", sa.text("date DESC"), sa.text("key DESC"),
                 postgresql_include=["tenant_id"], postgresql_where=sa.text("kind <> 'invoice'")),
        sa.Index("ix_invoice_rows_amount", "amount", sa.text("date DESC"), "key", postgresql_include=["tenant_id"]),
        sa.Index("ix_invoice_rows_tenant_date", "tenant_id", sa.text("date DESC"), sa.text("key DESC")),
        sa.Index("ix_invoice_rows_account", "account_key", sa.text("date DESC"), "key", postgresql_include=["tenant_id"]),
    )

    key: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.Text)
    transaction_id: Mapped[str] = mapped_column(sa.Text, sa.ForeignKey("payment_transactions.id"))
    tenant_id: Mapped[str] = mapped_column(sa.Text)
    date: Mapped[datetime] = mapped_column(TIMESTAMP)
    status: Mapped[str] = mapped_column(sa.Text)
    amount: Mapped[Decimal | None] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(sa.Text)
    # The account's name as the list sorts it (lower-cased); a trigger on tenants follows renames (migration 0012).
    account_key: Mapped[str] = mapped_column(sa.Text)


class InvoiceTotal(db.Model):
    """The invoices list's counted rows summed per account, kind and currency: its totals add these up.

    Triggers on invoice_rows write it (migration 0013); nothing else does.
    """

    __tablename__ = "invoice_totals"

    tenant_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    kind: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    currency: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    amount: Mapped[Decimal] = mapped_column(MONEY, server_default="0")


class RevenueDaily(db.Model):
    """Net revenue per day and currency (DESIGN §4.10), kept by a trigger on payment_transactions (migration 0007)."""

    __tablename__ = "revenue_daily"
    __table_args__ = (sa.CheckConstraint(_currency_check("currency"), name="currency"),)

    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    currency: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    amount: Mapped[Decimal] = mapped_column(MONEY, server_default="0")

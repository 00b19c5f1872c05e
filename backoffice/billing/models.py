"""The ledger and its inputs: Stripe archive, billing events, projection, catalog, payments, rollups.

DESIGN §3 and §4. The append-only rules of §4.7 are enforced by triggers that live only in the
migration (`0001_initial_schema`); the models declare every column, constraint and index so that
`flask db check` compares them with the database.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from backoffice.accounts.models import SUSPENSION_REASONS
from backoffice.billing.list_indexes import partial_indexes
from backoffice.billing.vocabulary import AccountStatus, EventType, Movement
from backoffice.extensions import db

MONEY = sa.Numeric(18, 2)
TIMESTAMP = sa.DateTime(timezone=True)

BILLING_EVENT_TYPES = tuple(EventType)
MOVEMENTS = tuple(Movement)
STRIPE_EVENT_STATUSES = ("pending", "processed", "ignored", "failed")
RECOVERY_SOURCES = ("events_list", "delivery_audit")
# Stripe's own subscription statuses, kept as Stripe spells them.
SUBSCRIPTION_STATUSES = (
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
)
ACCOUNT_STATUSES = tuple(AccountStatus)
PAYMENT_STATUSES = ("succeeded", "refunded", "failed", "pending", "cancelled")
PRICE_INTERVALS = ("day", "week", "month", "year")
TAX_BEHAVIORS = ("inclusive", "exclusive", "unspecified")

SHA256_HEX = "^[0-9a-f]{64}$"


def _one_of(column: str, values: tuple[str, ...], *, nullable: bool = False) -> str:
    """Return the SQL of a CHECK that keeps a text column within an enumeration."""
    listed = ", ".join(f"'{value}'" for value in values)
    return f"{column} IS NULL OR {column} IN ({listed})" if nullable else f"{column} IN ({listed})"


def _currency_check(column: str, *, nullable: bool = False) -> str:
    """Return the SQL of a CHECK that a column holds an upper-case ISO 4217 code."""
    check = f"{column} ~ '^[A-Z]{{3}}$'"
    return f"{column} IS NULL OR {check}" if nullable else check


# MRR rows carry all three amounts and other rows none (DESIGN §4.5); where set, they must add up.
_AMOUNTS_ALL_OR_NONE = (
    "(previous_amount IS NULL) = (new_amount IS NULL) AND (new_amount IS NULL) = (amount_delta IS NULL)"
)
_DELTA_CHECK = (
    "previous_amount IS NULL OR new_amount IS NULL OR amount_delta IS NULL "
    "OR new_amount - previous_amount = amount_delta"
)


class Subscription(db.Model):
    """The replay job's projection of a tenant's Stripe subscription (one per tenant)."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        sa.UniqueConstraint("tenant_id"),
        sa.UniqueConstraint("stripe_customer_id"),
        sa.CheckConstraint(_one_of("status", SUBSCRIPTION_STATUSES, nullable=True), name="status"),
        sa.CheckConstraint(_one_of("account_status", ACCOUNT_STATUSES), name="account_status"),
        sa.CheckConstraint(
            _currency_check("current_price_currency", nullable=True), name="current_price_currency"
        ),
        sa.CheckConstraint(
            "(current_price_amount IS NULL OR current_price_amount >= 0) "
            "AND (scheduled_price_amount IS NULL OR scheduled_price_amount >= 0) AND forward_mrr >= 0",
            name="amounts_non_negative",
        ),
        sa.CheckConstraint("jsonb_typeof(drift_discrepancies) = 'array'", name="drift_discrepancies_array"),
        sa.Index(None, "forward_mrr"),
        sa.Index(None, "account_status"),
        sa.Index(None, "drift_checked_at"),
        # Blended MRR sums one currency's forward MRR from the index alone.
        sa.Index("ix_subscriptions_currency_mrr", "current_price_currency", postgresql_include=["forward_mrr"]),
        # The drift banner counts few flagged rows among many.
        sa.Index(
            "ix_subscriptions_drift_detected", "tenant_id", postgresql_where=sa.text("has_drift_detected")
        ),
    )

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text, sa.ForeignKey("tenants.id"))
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=sa.func.now())
    modified_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    stripe_customer_id: Mapped[str | None] = mapped_column(sa.Text)
    stripe_subscription_id: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str | None] = mapped_column(sa.Text)
    plan: Mapped[str | None] = mapped_column(sa.Text)
    scheduled_plan: Mapped[str | None] = mapped_column(sa.Text)
    current_price_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    current_price_currency: Mapped[str | None] = mapped_column(sa.Text)
    scheduled_price_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    current_period_end: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    cancel_at_period_end: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    # Free text: Stripe's cancellation feedback and the product's own reasons both land here.
    cancellation_reason: Mapped[str | None] = mapped_column(sa.Text)
    first_payment_failed_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    subscribed_since: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    # Stored, derived from the columns above, so that lists sort and filter on them by index.
    forward_mrr: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    account_status: Mapped[str] = mapped_column(sa.Text, server_default="free")
    payment_method: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    billing_info: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    history_complete_from: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    has_drift_detected: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    drift_checked_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    drift_discrepancies: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=sa.text("'[]'::jsonb")
    )
    drift_acknowledged_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    drift_acknowledged_by: Mapped[str | None] = mapped_column(sa.Text, sa.ForeignKey("operators.id"))


class PlanPrice(db.Model):
    """A Stripe price of the catalog, with the plan its metadata names (null when it names none)."""

    __tablename__ = "plan_prices"
    __table_args__ = (
        sa.CheckConstraint(_currency_check("currency"), name="currency"),
        sa.CheckConstraint(_one_of("interval", PRICE_INTERVALS, nullable=True), name="interval"),
        sa.CheckConstraint("interval_count IS NULL OR interval_count > 0", name="interval_count_positive"),
        sa.CheckConstraint(_one_of("tax_behavior", TAX_BEHAVIORS, nullable=True), name="tax_behavior"),
        sa.CheckConstraint("unit_amount IS NULL OR unit_amount >= 0", name="unit_amount_non_negative"),
        sa.Index(None, "plan"),
    )

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    product_id: Mapped[str] = mapped_column(sa.Text)
    plan: Mapped[str | None] = mapped_column(sa.Text)
    # Major units; null for prices Stripe bills by tiers.
    unit_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(sa.Text)
    interval: Mapped[str | None] = mapped_column(sa.Text)
    interval_count: Mapped[int | None] = mapped_column(sa.Integer)
    tax_behavior: Mapped[str | None] = mapped_column(sa.Text)
    active: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.true())
    fetched_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=sa.func.now())


class PaymentTransaction(db.Model):
    """One invoice of a subscription, with its refunds and credit notes netted in (DESIGN §4.10)."""

    __tablename__ = "payment_transactions"
    __table_args__ = (
        sa.CheckConstraint(
            "amount >= 0 AND amount_excluding_tax >= 0 AND tax_amount >= 0 AND invoice_total >= 0 "
            "AND amount_from_credit >= 0 AND refunded_amount >= 0 AND credited_amount >= 0",
            name="amounts_non_negative",
        ),
        sa.CheckConstraint(_currency_check("currency"), name="currency"),
        sa.CheckConstraint(_one_of("status", PAYMENT_STATUSES), name="status"),
        sa.Index(None, "subscription_id"),
        sa.Index("ix_payment_transactions_tenant_id_date", "tenant_id", sa.text("date DESC")),
        sa.Index("ix_payment_transactions_date", sa.text("date DESC")),
    )

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    subscription_id: Mapped[str] = mapped_column(sa.Text, sa.ForeignKey("subscriptions.id"))
    tenant_id: Mapped[str] = mapped_column(sa.Text, sa.ForeignKey("tenants.id"))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    amount_excluding_tax: Mapped[Decimal] = mapped_column(MONEY)
    tax_amount: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    invoice_total: Mapped[Decimal] = mapped_column(MONEY)
    amount_from_credit: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    # Both ex-VAT, so that net revenue is amount_excluding_tax − refunded − credited.
    refunded_amount: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    credited_amount: Mapped[Decimal] = mapped_column(MONEY, server_default="0")
    currency: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.Text)
    date: Mapped[datetime] = mapped_column(TIMESTAMP)
    plan: Mapped[str | None] = mapped_column(sa.Text)
    invoice_url: Mapped[str | None] = mapped_column(sa.Text)
    credit_note_url: Mapped[str | None] = mapped_column(sa.Text)
    credit_noted_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    refunded_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    failure_reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=sa.func.now())
    modified_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)


def payload_object_field(name: str) -> sa.TextClause:
    """A field of an archived event's `data.object`, spelled as the archive's expression indexes spell it.

    Literal SQL, not a bound path: PostgreSQL uses an expression index only for the very same expression, and
    a generic plan of a prepared statement would not see through parameters to it.
    """
    return sa.text(f"(((payload -> 'data') -> 'object') ->> '{name}')")


class StripeEvent(db.Model):
    """An archived Stripe event: the source of truth the ledger is replayed from.

    Append-only (DESIGN §4.7, enforced by trigger): status moves pending → processed | ignored |
    failed, ignored → processed | failed, failed → processed | failed (a retry); processed_at and
    error change only with such a move; tenant_id and stripe_subscription_id may be set once from null.
    """

    __tablename__ = "stripe_events"
    __table_args__ = (
        sa.CheckConstraint(_one_of("status", STRIPE_EVENT_STATUSES), name="status"),
        sa.CheckConstraint(
            _one_of("recovery_source", RECOVERY_SOURCES, nullable=True), name="recovery_source"
        ),
        sa.CheckConstraint(
            "(recovered_at IS NULL) = (recovery_source IS NULL)", name="recovered_with_source"
        ),
        sa.CheckConstraint(f"payload_hash ~ '{SHA256_HEX}'", name="payload_hash_sha256"),
        sa.Index(None, "stripe_customer_id", "status"),
        sa.Index(None, "tenant_id"),
        sa.Index(None, "stripe_created_at"),
        sa.Index(
            "ix_stripe_events_recovered_at",
            "recovered_at",
            postgresql_where=sa.text("recovered_at IS NOT NULL"),
        ),
        # Refunds and invoice payments name no customer: the replay finds them by their charge or invoice.
        sa.Index("ix_stripe_events_no_customer_charge", payload_object_field("charge"),
                 postgresql_where=sa.text("stripe_customer_id IS NULL")),
        sa.Index("ix_stripe_events_no_customer_invoice", payload_object_field("invoice"),
                 postgresql_where=sa.text("stripe_customer_id IS NULL")),
        # A coupon names no customer either: found by its own id.
        sa.Index("ix_stripe_events_coupon_object_id", payload_object_field("id"),
                 postgresql_where=sa.text("type LIKE 'coupon.%'")),
        # The pending sweeper and the failed-events list look only at the few unsettled rows.
        sa.Index(
            "ix_stripe_events_status_unsettled",
            "status",
            "received_at",
            postgresql_where=sa.text("status IN ('pending', 'failed')"),
        ),
    )

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    # Arrival order, for forensics only: the ledger order never depends on it (DESIGN §4.4).
    sequence: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity())
    received_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=sa.func.now())
    stripe_created_at: Mapped[datetime] = mapped_column(TIMESTAMP)
    type: Mapped[str] = mapped_column(sa.Text)
    api_version: Mapped[str | None] = mapped_column(sa.Text)
    stripe_customer_id: Mapped[str | None] = mapped_column(sa.Text)
    stripe_subscription_id: Mapped[str | None] = mapped_column(sa.Text)
    tenant_id: Mapped[str | None] = mapped_column(sa.Text, sa.ForeignKey("tenants.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    payload_hash: Mapped[str] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.Text, server_default="pending")
    processed_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    error: Mapped[str | None] = mapped_column(sa.Text)
    recovered_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    recovery_source: Mapped[str | None] = mapped_column(sa.Text)


class StripeEventDivergence(db.Model):
    """A second body received under an archived event id; the archived row stays as it was (append-only)."""

    __tablename__ = "stripe_event_divergences"
    __table_args__ = (
        # Stripe retries the same divergent body: one row per distinct body is enough.
        sa.UniqueConstraint("stripe_event_id", "payload_hash"),
        sa.CheckConstraint(f"payload_hash ~ '{SHA256_HEX}'", name="payload_hash_sha256"),
    )

    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    stripe_event_id: Mapped[str] = mapped_column(sa.Text, sa.ForeignKey("stripe_events.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    payload_hash: Mapped[str] = mapped_column(sa.Text)
    received_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=sa.func.now())


class LedgerValues:
    """What a ledger row states about its event, declared once for the row and for its corrections.

    A correction restates these values in full (DESIGN §4.6), so both tables must carry the same columns
    under the same CHECKs; sharing them here keeps the two from drifting apart.
    """

    event_type: Mapped[str] = mapped_column(sa.Text)
    from_plan: Mapped[str | None] = mapped_column(sa.Text)
    to_plan: Mapped[str | None] = mapped_column(sa.Text)
    previous_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    new_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    amount_delta: Mapped[Decimal | None] = mapped_column(MONEY)
    committed_mrr: Mapped[Decimal] = mapped_column(MONEY)
    movement: Mapped[str | None] = mapped_column(sa.Text)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        """Return the CHECKs of the ledger values, new for each table (the naming convention prefixes it)."""
        return (
            sa.CheckConstraint(_one_of("event_type", BILLING_EVENT_TYPES), name="event_type"),
            sa.CheckConstraint(_one_of("movement", MOVEMENTS, nullable=True), name="movement"),
            sa.CheckConstraint("committed_mrr >= 0", name="committed_mrr_non_negative"),
            sa.CheckConstraint(_AMOUNTS_ALL_OR_NONE, name="amounts_all_or_none"),
            sa.CheckConstraint(_DELTA_CHECK, name="amount_delta"),
        )


class BillingEvent(LedgerValues, db.Model):
    """A ledger row: what the replay job believed an event meant when it wrote it (append-only).

    Readers want `effective_billing_events`, which applies the latest correction.
    """

    __tablename__ = "billing_events"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        """Return the ledger values' CHECKs followed by the row's own constraints and indexes."""
        return (
            *LedgerValues.__table_args__,
            sa.UniqueConstraint("stripe_event_id"),
            sa.CheckConstraint(
                _one_of("suspension_reason", SUSPENSION_REASONS, nullable=True), name="suspension_reason"
            ),
            sa.CheckConstraint(_currency_check("currency", nullable=True), name="currency"),
            sa.Index("ix_billing_events_tenant_id_occurred_at", "tenant_id", sa.text("occurred_at DESC")),
            sa.Index("ix_billing_events_occurred_at", sa.text("occurred_at DESC")),
            sa.Index(None, "subscription_id", "occurred_at", "position"),
        )

    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text, sa.ForeignKey("tenants.id"))
    subscription_id: Mapped[str] = mapped_column(sa.Text, sa.ForeignKey("subscriptions.id"))
    # A Stripe event id, or `baseline:<subscription>:<cutoff>` for a LedgerBaseline row.
    stripe_event_id: Mapped[str] = mapped_column(sa.Text)
    currency: Mapped[str | None] = mapped_column(sa.Text)
    occurred_at: Mapped[datetime] = mapped_column(TIMESTAMP)
    # Rank in the DESIGN §4.4 order within the subscription; breaks ties between equal occurred_at.
    position: Mapped[int] = mapped_column(sa.Integer)
    cancellation_reason: Mapped[str | None] = mapped_column(sa.Text)
    suspension_reason: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=sa.func.now())


class BillingEventCorrection(LedgerValues, db.Model):
    """A recomputed version of a ledger row, appended when a late event changed it (DESIGN §4.6).

    A correction carries the complete corrected values, not only the ones that changed: a row that
    turns from an MRR row into a NoOp must be able to say its amounts are now null.
    """

    __tablename__ = "billing_event_corrections"

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        """Return the ledger values' CHECKs followed by the correction's own index."""
        return (
            *LedgerValues.__table_args__,
            # The view picks the latest correction per row by (at, id).
            sa.Index(None, "billing_event_id", "at", "id"),
        )

    # An identity, so that corrections written in the same instant still have an order.
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    billing_event_id: Mapped[str] = mapped_column(sa.Text, sa.ForeignKey("billing_events.id"))
    # The row's rank within its second as now computed (null: unchanged); the view applies it.
    position: Mapped[int | None] = mapped_column(sa.Integer)
    # The late Stripe event whose arrival made the recomputation differ.
    caused_by: Mapped[str] = mapped_column(sa.Text)
    reason: Mapped[str] = mapped_column(sa.Text)
    at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=sa.func.now())


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

    billing_event_id: Mapped[str] = mapped_column(sa.Text, sa.ForeignKey("billing_events.id"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(sa.Text)
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


class InvoiceListRow(db.Model):
    """The invoices list's read model: one row per row of the dual-row projection (billing/invoices.py), narrow.

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


class SyncState(db.Model):
    """A named piece of job state, such as the global events.list anchor."""

    __tablename__ = "sync_state"

    key: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    value: Mapped[Any] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=sa.func.now())


# The view of DESIGN §4.6, for Core queries. It lives in its own MetaData: the migration creates it,
# and autogenerate must not mistake it for a missing table.
effective_billing_events = sa.Table(
    "effective_billing_events",
    sa.MetaData(),
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("tenant_id", sa.Text),
    sa.Column("subscription_id", sa.Text),
    sa.Column("stripe_event_id", sa.Text),
    sa.Column("event_type", sa.Text),
    sa.Column("from_plan", sa.Text),
    sa.Column("to_plan", sa.Text),
    sa.Column("previous_amount", MONEY),
    sa.Column("new_amount", MONEY),
    sa.Column("amount_delta", MONEY),
    sa.Column("committed_mrr", MONEY),
    sa.Column("currency", sa.Text),
    sa.Column("occurred_at", TIMESTAMP),
    sa.Column("position", sa.Integer),
    sa.Column("movement", sa.Text),
    sa.Column("cancellation_reason", sa.Text),
    sa.Column("suspension_reason", sa.Text),
    sa.Column("created_at", TIMESTAMP),
    sa.Column("corrected", sa.Boolean),
    sa.Column("corrected_at", TIMESTAMP),
    sa.Column("correction_id", sa.BigInteger),
)

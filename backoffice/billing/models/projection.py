"""The projection of Stripe's objects the ledger keeps (DESIGN §3): subscriptions, the price catalog,
payment transactions."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.billing.models.columns import (
    ACCOUNT_STATUSES,
    MONEY,
    PAYMENT_STATUSES,
    PRICE_INTERVALS,
    SUBSCRIPTION_STATUSES,
    TAX_BEHAVIORS,
    TIMESTAMP,
    _currency_check,
    _one_of,
)
from backoffice.extensions import db


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
        # A pasted subscription id finds its account (migration 0017).
        sa.Index(None, "stripe_subscription_id"),
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

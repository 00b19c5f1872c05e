"""The ledger (DESIGN §4.5–§4.7): billing events, their corrections, and the effective view over both.

The append-only rules are enforced by triggers that live only in the migrations."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from backoffice.accounts.models import SUSPENSION_REASONS
from backoffice.billing.models.columns import (
    _AMOUNTS_ALL_OR_NONE,
    _DELTA_CHECK,
    BILLING_EVENT_TYPES,
    MONEY,
    MOVEMENTS,
    TIMESTAMP,
    _currency_check,
    _one_of,
)
from backoffice.extensions import db


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

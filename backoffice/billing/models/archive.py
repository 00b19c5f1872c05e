"""The Stripe archive (DESIGN §2.1, §4.7): every event as Stripe sent it, payloads that diverged, job state."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.billing.models.columns import (
    RECOVERY_SOURCES,
    SHA256_HEX,
    STRIPE_EVENT_STATUSES,
    TIMESTAMP,
    _one_of,
)
from backoffice.extensions import db


def payload_object_field(name: str) -> sa.TextClause:
    """A field of an archived event's `data.object`, spelled as the archive's expression indexes spell it.

    Literal SQL, not a bound path: PostgreSQL uses an expression index only for the very same expression, and
    a generic plan of a prepared statement would not see through parameters to it.
    """
    return sa.text(f"(((payload -> 'data') -> 'object') ->> '{name}')")


class StripeEvent(db.Model):
    """An archived Stripe event: the source of truth the ledger is replayed from.

    Append-only (DESIGN §4.7, enforced by trigger): nothing changes once stored but stripe_subscription_id, set
    once from null. What the replay made of the event is its `StripeEventState`.
    """

    __tablename__ = "stripe_events"
    __table_args__ = (
        sa.CheckConstraint(
            _one_of("recovery_source", RECOVERY_SOURCES, nullable=True), name="recovery_source"
        ),
        sa.CheckConstraint(
            "(recovered_at IS NULL) = (recovery_source IS NULL)", name="recovered_with_source"
        ),
        sa.CheckConstraint(f"payload_hash ~ '{SHA256_HEX}'", name="payload_hash_sha256"),
        sa.Index(None, "stripe_customer_id"),
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
        # A pasted id of an invoice, a charge, a refund or a credit note finds its events (migration 0017).
        sa.Index("ix_stripe_events_object_id", payload_object_field("id")),
        sa.Index("ix_stripe_events_coupon_object_id", payload_object_field("id"),
                 postgresql_where=sa.text("type LIKE 'coupon.%'")),
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
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    payload_hash: Mapped[str] = mapped_column(sa.Text)
    recovered_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    recovery_source: Mapped[str | None] = mapped_column(sa.Text)


class StripeEventState(db.Model):
    """What the replay made of an archived event (DESIGN §4.7, enforced by trigger), one row per event, opened as
    pending by a trigger on every insert into the archive.

    Apart from the archive row so that settling an event writes a narrow row (migration 0024): status moves
    pending → processed | ignored | failed, ignored → processed | failed, failed → processed | failed (a retry);
    processed_at and error change only with such a move; tenant_id may be set once from null. Never deleted.
    """

    __tablename__ = "stripe_event_states"
    __table_args__ = (
        sa.CheckConstraint(_one_of("status", STRIPE_EVENT_STATUSES), name="status"),
        # The pending sweeper, the failed-events list and `replay --all` look only at the few unsettled rows.
        sa.Index("ix_stripe_event_states_unsettled", "status",
                 postgresql_where=sa.text("status IN ('pending', 'failed', 'ignored')")),
    )

    # No foreign key: only the archive's trigger may open a state (migration 0025), which keeps it an archived
    # event's without a check on every delivery.
    stripe_event_id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    status: Mapped[str] = mapped_column(sa.Text, server_default="pending")
    processed_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    error: Mapped[str | None] = mapped_column(sa.Text)
    # Neither a foreign key nor an index (migration 0027): set only by the replay, from a subscription whose own key
    # checks it, and read with its state, never searched by.
    tenant_id: Mapped[str | None] = mapped_column(sa.Text)


def archived_with_states() -> sa.Join:
    """The archive joined to its events' states: what every reader of an event's status selects from."""
    events, states = StripeEvent.__table__, StripeEventState.__table__
    return events.join(states, states.c.stripe_event_id == events.c.id)


def latest_object_payload(kind: str, object_id: str) -> sa.Select:
    """The payload of the newest archived `kind.*` event (coupon, product) about the object `object_id`: an object
    that names no customer, found by the archive's object-id index (its expression spelled as the index's)."""
    events = StripeEvent.__table__
    return (sa.select(events.c.payload)
            .where(events.c.type.like(f"{kind}.%"), sa.literal_column(payload_object_field("id").text, sa.Text) == object_id)
            .order_by(events.c.stripe_created_at.desc()).limit(1))


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


class SyncState(db.Model):
    """A named piece of job state, such as the global events.list anchor."""

    __tablename__ = "sync_state"

    key: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    value: Mapped[Any] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=sa.func.now())

"""Archived events whose replay failed: the operators' list, and the admin's audited retry (DESIGN §4.7, §4.12).

A retry does not touch the event itself: it queues its customer's replay, which moves the event through
the status machine (failed → processed, or failed again with the new error).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backoffice.billing.models import StripeEvent, StripeEventState, archived_with_states

EVENTS = StripeEvent.__table__
STATES = StripeEventState.__table__


@dataclass(frozen=True)
class FailedEvent:
    id: str
    type: str
    customer_id: str | None
    tenant_id: str | None
    created: datetime
    received_at: datetime
    failed_at: datetime | None
    error: str | None
    object_summary: str  # the payload at a glance: its object's type and id

    CSV_FIELDS = ("id", "type", "customer_id", "tenant_id", "created", "received_at", "failed_at", "error",
                  "object_summary")


class NotRetryable(ValueError):
    """The event is not (or no longer) failed."""


def _query():
    obj = EVENTS.c.payload["data"]["object"]
    return (select(EVENTS.c.id, EVENTS.c.type, EVENTS.c.stripe_customer_id, STATES.c.tenant_id,
                   EVENTS.c.stripe_created_at, EVENTS.c.received_at, STATES.c.processed_at, STATES.c.error,
                   obj["object"].astext, obj["id"].astext)
            .select_from(archived_with_states())
            .where(STATES.c.status == "failed")
            .order_by(EVENTS.c.received_at.desc(), EVENTS.c.id))


def _row(row: Any) -> FailedEvent:
    summary = " ".join(part for part in (row[8], row[9]) if part)
    return FailedEvent(row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7], summary)


def failed_events(session: Session, *, page: int, per_page: int) -> tuple[list[FailedEvent], int]:
    """One page of failed events, newest arrival first, and how many there are."""
    total = session.scalar(select(func.count()).select_from(STATES).where(STATES.c.status == "failed"))
    rows = session.execute(_query().limit(per_page).offset((page - 1) * per_page)).all()
    return [_row(row) for row in rows], total


def all_failed_events(session: Session, batch: int = 1000) -> Iterator[FailedEvent]:
    """Every failed event, streamed in batches (the CSV export)."""
    result = session.execute(_query().execution_options(yield_per=batch))
    for row in result:
        yield _row(row)


@dataclass(frozen=True)
class RetryTarget:
    """What a retry of a failed event replays (its customer, None when it names none) and whose account it is."""
    customer_id: str | None
    tenant_id: str | None


def retry_target(session: Session, event_id: str) -> RetryTarget:
    """The failed event's customer and account; NotRetryable when the event is not, or no longer, failed."""
    row = session.execute(select(STATES.c.status, EVENTS.c.stripe_customer_id, STATES.c.tenant_id)
                          .select_from(archived_with_states()).where(EVENTS.c.id == event_id)).first()
    if row is None or row.status != "failed":
        raise NotRetryable(event_id)
    return RetryTarget(row.stripe_customer_id, row.tenant_id)

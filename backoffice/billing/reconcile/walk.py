"""Recover events the webhook never delivered: one platform-wide walk of Stripe's `events.list` (DESIGN §2.3).

`events.list` cannot be filtered by customer, so a walk per customer would cost calls in proportion to the
whole platform's traffic. One walk pages everything created since a global anchor (at most Stripe's 30-day
window), inserts each event the archive lacks as recovered (`recovered_at`, `recovery_source='events_list'`),
and reports the customers it touched so their replays can be queued. The anchor moves only after a
complete pagination: a walk that fails half-way leaves it where it was, and the next walk covers the gap.
Events already archived are skipped by id; their bodies are not compared, because `events.list` renders an
event in the account's API version, which may differ from the webhook endpoint's.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from backoffice.billing.intake.webhook import WebhookRejected, read_envelope
from backoffice.billing.models import StripeEvent, SyncState

EVENTS = StripeEvent.__table__
ANCHOR = "events_list_anchor"
# Stripe lists an event a moment after creating it; re-reading the last minutes before the anchor catches
# the ones that were not listed yet when the previous walk passed (the archive dedupes the rest).
OVERLAP = timedelta(minutes=5)
# A walk that finished this recently is reused by a Sync instead of walking again.
FRESH = timedelta(minutes=1)


@dataclass
class WalkReport:
    """What one walk saw and did."""

    pages: int = 0
    seen: int = 0
    recovered: int = 0
    complete: bool = False
    reused: bool = False
    customers: set[str] = field(default_factory=set)
    anchor: datetime | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"pages": self.pages, "seen": self.seen, "recovered": self.recovered, "complete": self.complete,
                "reused": self.reused, "customers": len(self.customers),
                "anchor": self.anchor.isoformat() if self.anchor else None, "error": self.error}


def read_anchor(session: Session) -> tuple[datetime | None, datetime | None]:
    """(the anchor, when a walk last completed), either None before the first walk."""
    row = session.execute(select(SyncState.value, SyncState.updated_at).where(SyncState.key == ANCHOR)).first()
    if row is None or not row.value:
        return None, None
    return datetime.fromisoformat(row.value["created"]), row.updated_at


def _save_anchor(session: Session, created: datetime, now: datetime) -> None:
    statement = insert(SyncState).values(key=ANCHOR, value={"created": created.isoformat()}, updated_at=now)
    session.execute(statement.on_conflict_do_update(
        index_elements=[SyncState.key], set_={"value": statement.excluded.value, "updated_at": now}))


def archive_recovered(session: Session, events: list[dict[str, Any]], now: datetime) -> list[Any]:
    """Insert the events the archive lacks, marked recovered; return the envelopes of those inserted."""
    envelopes = []
    for event in events:
        try:
            envelopes.append(read_envelope(json.dumps(event).encode()))
        except WebhookRejected:
            continue  # not an event we could archive from a webhook either
    if not envelopes:
        return []
    known = set(session.scalars(select(EVENTS.c.id).where(EVENTS.c.id.in_([e.id for e in envelopes]))))
    inserted = []
    for envelope in envelopes:
        if envelope.id in known:
            continue
        raw = json.dumps(envelope.payload, sort_keys=True).encode()
        stored = session.execute(
            insert(EVENTS).values(
                id=envelope.id, stripe_created_at=envelope.created, type=envelope.type, api_version=envelope.api_version,
                stripe_customer_id=envelope.customer_id, stripe_subscription_id=envelope.subscription_id,
                payload=envelope.payload, payload_hash=hashlib.sha256(raw).hexdigest(),
                recovered_at=now, recovery_source="events_list")
            .on_conflict_do_nothing(index_elements=[EVENTS.c.id]).returning(EVENTS.c.id)).scalar()
        if stored is not None:
            inserted.append(envelope)
    return inserted


PAGE_SIZE = 100


def walk_events(session: Session, gateway: Any, now: datetime, *, page_size: int = PAGE_SIZE,
                progress: Callable[[WalkReport], None] | None = None) -> WalkReport:
    """Page `events.list` from the anchor (newest first), archive what is missing, move the anchor at the end.

    The caller commits. A failure of Stripe mid-walk is reported (`complete` false, `error` set), with the
    events recovered so far kept and the anchor unchanged.
    """
    anchor, _ = read_anchor(session)
    # Before the first walk, everything Stripe still lists (it keeps 30 days of events).
    since = anchor - OVERLAP if anchor is not None else None
    report = WalkReport(anchor=anchor)
    newest: datetime | None = None
    starting_after: str | None = None
    try:
        while True:
            page = gateway.events_page(created_gte=int(since.timestamp()) if since else None,
                                       starting_after=starting_after, limit=page_size)
            report.pages += 1
            report.seen += len(page.events)
            for envelope in archive_recovered(session, page.events, now):
                report.recovered += 1
                if envelope.customer_id:
                    report.customers.add(envelope.customer_id)
            if page.events:
                created = max(datetime.fromtimestamp(event["created"], UTC) for event in page.events)
                newest = created if newest is None or created > newest else newest
                starting_after = page.events[-1]["id"]
            if progress is not None:
                progress(report)
            if not page.has_more or not page.events:
                break
    except Exception as error:  # noqa: BLE001 - reported to the operator; the anchor stays for the next walk
        report.error = f"{type(error).__name__}: {error}"
        return report
    report.complete = True
    report.anchor = max(filter(None, (anchor, newest)), default=None)
    if report.anchor is not None:
        _save_anchor(session, report.anchor, now)
    return report


def walk_unless_fresh(session: Session, gateway: Any, now: datetime, *,
                      progress: Callable[[WalkReport], None] | None = None) -> WalkReport:
    """Walk, unless a walk completed within the last minute: a Sync then reuses it."""
    anchor, walked_at = read_anchor(session)
    if walked_at is not None and now - walked_at < FRESH:
        return WalkReport(complete=True, reused=True, anchor=anchor)
    return walk_events(session, gateway, now, progress=progress)

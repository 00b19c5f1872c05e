"""What a batch of replays writes (DESIGN §4.5, §4.6, §4.9): new ledger rows, corrections of rows whose values
changed, the payments, `mrr_daily` and the archive's statuses, each kind of write one statement."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Insert, Table, Text, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from backoffice.billing.ledger.rules import BASELINE, LedgerRow, Replayed
from backoffice.billing.models import (
    BillingEvent,
    BillingEventCorrection,
    MrrDaily,
    PaymentTransaction,
    StripeEventState,
    Subscription,
)
from backoffice.billing.replay.array_literals import ColumnArrays
from backoffice.billing.replay.linking import new_id
from backoffice.billing.replay.requests import ReplayReport, Restore

STATES = StripeEventState.__table__
LEDGER = BillingEvent.__table__
CORRECTIONS = BillingEventCorrection.__table__
ROLLUP = MrrDaily.__table__
PAYMENTS = PaymentTransaction.__table__


def insert_unnested(table: Table, columns: Sequence[str]) -> tuple[Insert, ColumnArrays]:
    """An INSERT of any number of rows in one statement: each column is bound as one array and unnested.

    PostgreSQL plans and runs it once, where `executemany` runs one INSERT per row (twice the server's time
    for a batch's ledger rows). Execute it with the returned arrays' `params(rows)`.
    """
    arrays = ColumnArrays({name: table.c[name].type for name in columns})
    rows = func.unnest(*arrays.arrays.values()).table_valued(*columns).render_derived()
    return insert(table).from_select(list(columns), select(*(rows.c[name] for name in columns))), arrays


_ledger_columns = ("id", "tenant_id", "subscription_id", "stripe_event_id", "currency", "occurred_at", "position",
                   "cancellation_reason", "suspension_reason", *LedgerRow.VALUE_FIELDS)
_ledger_insert, LEDGER_ARRAYS = insert_unnested(LEDGER, _ledger_columns)
LEDGER_INSERT = _ledger_insert.on_conflict_do_nothing(index_elements=["stripe_event_id"])
CORRECTION_INSERT, CORRECTION_ARRAYS = insert_unnested(
    CORRECTIONS, ("billing_event_id", "caused_by", "reason", "position", *LedgerRow.VALUE_FIELDS))
_payment_columns = [column.name for column in PAYMENTS.columns if column.name != "created_at"]
_payment_insert, PAYMENT_ARRAYS = insert_unnested(PAYMENTS, _payment_columns)
# Every state a batch moves, in one statement (one per customer cost the replay ~10 µs an event more): the tenant
# linked in the same statement (set once, from null), under the states' guard (§4.7).
STATUS_ARRAYS = ColumnArrays({name: Text() for name in ("id", "status", "error", "tenant")})
_moves = func.unnest(*STATUS_ARRAYS.arrays.values()).table_valued("id", "status", "error", "tenant").render_derived()
STATUS_UPDATE = (update(STATES).where(STATES.c.stripe_event_id == _moves.c.id)
                 .values(status=_moves.c.status, processed_at=func.now(), error=_moves.c.error,
                         tenant_id=func.coalesce(STATES.c.tenant_id, _moves.c.tenant)))
PAYMENT_UPSERT = _payment_insert.on_conflict_do_update(
    index_elements=[PAYMENTS.c.id],
    set_={name: _payment_insert.excluded[name] for name in _payment_columns if name != "id"})


@dataclass
class Work:
    """One customer's replay inside a batch."""

    subscription: Subscription
    replayed: Replayed
    new_ids: set[str]
    report: ReplayReport
    restore: Restore | None = None
    restatement: str | None = None  # `restatement:<audit id>`: every differing row is corrected, caused by it

    def writes(self, row: LedgerRow, stored: bool) -> bool:
        """Whether the replay may write this row (or a correction of it).

        History up to a disaster recovery's cutoff stands as it is: its baseline speaks for it. A missing row
        is written for an event this replay settles, or one the restore names; a processed event without a row
        otherwise waits for a Sync or a disaster recovery, which an operator decides on (DESIGN §4.11).
        """
        complete_from = self.subscription.history_complete_from
        if complete_from is not None and row.occurred_at <= complete_from:
            return False
        if stored or row.stripe_event_id in self.new_ids:
            return True
        return self.restore is not None and row.occurred_at > self.restore.after


class Batch:
    """What a batch of replays writes, collected so that each kind of write is one statement."""

    def __init__(self, platform_currency: str):
        self.works: list[Work] = []
        self.inserts: list[dict[str, Any]] = []
        self.corrections: list[dict[str, Any]] = []
        self.payments: list[dict[str, Any]] = []
        self.statuses: dict[str, tuple[str, str | None, str | None]] = {}  # event id: (status, error, tenant)
        self.rollup = Rollup(platform_currency)

    def set_status(self, rows: list[Any], status: str, error: str | None, tenant_id: str | None = None) -> int:
        """Move rows on; one set aside again keeps its status (§4.7 has no failed → ignored), with the new reason."""
        moved = 0
        for row in rows:
            target = row.status if status == "ignored" and row.status in ("ignored", "failed") else status
            if not (target == row.status == "ignored"):
                self.statuses[row.id] = (target, error, tenant_id)
                moved += 1
        return moved

    def write(self, session: Session) -> None:
        session.flush()  # new subscription rows first: the ledger and payments refer to them
        connection = session.connection()
        if self.inserts:
            connection.execute(LEDGER_INSERT, LEDGER_ARRAYS.params(self.inserts))
        if self.corrections:
            connection.execute(CORRECTION_INSERT, CORRECTION_ARRAYS.params(self.corrections))
        if self.payments:
            # One statement may change a row once only: an invoice seen twice keeps its last values, as before. In
            # one order, so two replays at once lock payments alike (`revenue_daily`'s trigger sorts its days itself).
            payments = sorted({row["id"]: row for row in self.payments}.values(), key=lambda row: (row["date"], row["id"]))
            connection.execute(PAYMENT_UPSERT, PAYMENT_ARRAYS.params(payments))
        self.rollup.write(session)
        if self.statuses:
            ids = sorted(self.statuses)
            connection.execute(STATUS_UPDATE, STATUS_ARRAYS.of_columns(
                {"id": ids, **{name: [self.statuses[i][n] for i in ids]
                               for n, name in enumerate(("status", "error", "tenant"))}}))


class Rollup:
    """Changes to `mrr_daily`, summed per (day, currency, movement), written with one upsert."""

    def __init__(self, platform_currency: str):
        self.platform_currency = platform_currency
        self.changes: dict[tuple[Any, str, str], list[Any]] = defaultdict(lambda: [Decimal(0), 0])

    def add(self, at: datetime, currency: str | None, movement: str | None, delta: Decimal | None, sign: int) -> None:
        if movement is None or delta is None:
            return
        change = self.changes[(at.astimezone(UTC).date(), currency or self.platform_currency, movement)]
        change[0] += sign * delta
        change[1] += sign

    def write(self, session: Session) -> None:
        # In one order of (day, currency, movement) for every batch: two replays running at once (the shards of
        # `replay --all`, a worker's job beside them) wait for each other's rows here, but never deadlock.
        changes = [(key, total, count) for key, (total, count) in sorted(self.changes.items()) if total or count]
        if not changes:
            return
        # Make sure each row exists, then add: a CHECK sees an INSERT's proposed row before ON CONFLICT does,
        # so a negative change (a correction taking a movement back) cannot ride on the upsert.
        session.connection().execute(insert(ROLLUP).on_conflict_do_nothing(), [
            {"day": day, "currency": currency, "movement": movement, "delta_sum": 0, "event_count": 0}
            for (day, currency, movement), _, _ in changes])
        session.connection().execute(
            update(ROLLUP)
            .where(ROLLUP.c.day == bindparam("k_day"), ROLLUP.c.currency == bindparam("k_currency"),
                   ROLLUP.c.movement == bindparam("k_movement"))
            .values(delta_sum=ROLLUP.c.delta_sum + bindparam("k_delta"),
                    event_count=ROLLUP.c.event_count + bindparam("k_count")),
            [{"k_day": day, "k_currency": currency, "k_movement": movement, "k_delta": total, "k_count": count}
             for (day, currency, movement), total, count in changes])


def write_rows(work: Work, existing: dict[str, Any], batch: Batch) -> None:
    """Append rows for events without one; correct rows whose values changed (DESIGN §4.6)."""
    subscription, replayed = work.subscription, work.replayed
    order = {event.id: index for index, event in enumerate(replayed.ordered)}
    new_positions = sorted(order[i] for i in work.new_ids if i in order)
    restored: str | None = None  # the first row this replay restores (a baseline included), in order
    appended = corrected = 0
    for row in replayed.rows:
        stored = existing.get(row.stripe_event_id)
        baseline = row.event_type == BASELINE
        if not baseline and not work.writes(row, stored is not None):
            continue
        if stored is None:
            batch.inserts.append(ledger_row(subscription, row))
            batch.rollup.add(row.occurred_at, row.currency, row.movement, row.amount_delta, 1)
            appended += 1
            if row.stripe_event_id not in work.new_ids:
                restored = restored or row.stripe_event_id
            continue
        if baseline or (stored.position == row.position and all(
                getattr(stored, name) == value for name, value in row.values().items())):
            continue
        # Caused by the earliest newly arrived event before this row, else by a restored row before it; else
        # (the rules changed) by itself. A restore alone recomputes nothing no row of its own changed: what
        # differs then is for the drift detector to report (BillingEventDenormalizationStale).
        earlier = [p for p in new_positions if p < order[row.stripe_event_id]]
        cause = replayed.ordered[earlier[0]].id if earlier else restored
        reason = ("late event" if earlier else "restored") if cause else "recomputed"
        if cause is None and work.restatement is not None:
            # Computed wrong when written (a rule fixed, a price or coupon learned late), DESIGN §4.6.
            cause, reason = work.restatement, "restated"
        if cause is None and not work.new_ids:
            continue
        batch.corrections.append({
            "billing_event_id": stored.id, "caused_by": cause or row.stripe_event_id, "reason": reason,
            "position": row.position, **row.values(),
        })
        batch.rollup.add(stored.occurred_at, stored.currency, stored.movement, stored.amount_delta, -1)
        batch.rollup.add(stored.occurred_at, stored.currency, row.movement, row.amount_delta, 1)
        corrected += 1
    work.report.appended, work.report.corrected = appended, corrected


def ledger_row(subscription: Subscription, row: LedgerRow) -> dict[str, Any]:
    return {"id": new_id("bev"), "tenant_id": subscription.tenant_id, "subscription_id": subscription.id,
            "stripe_event_id": row.stripe_event_id, "currency": row.currency, "occurred_at": row.occurred_at,
            "position": row.position, "cancellation_reason": row.cancellation_reason,
            "suspension_reason": row.suspension_reason, **row.values()}

"""Jobs of the ledger (run by RQ workers, or in-process without Redis): glue between the queue and `replay`."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError

from backoffice.billing.models import StripeEvent, StripeEventState, archived_with_states
from backoffice.billing.replay import (
    CollectedEvery,
    Payloads,
    ReadAhead,
    Replayer,
    ReplayReport,
    ReplaySettings,
    Restore,
)
from backoffice.billing.replay.archive import UNSETTLED
from backoffice.billing.replay.shards import run_shards, split, usable_cpus
from backoffice.extensions import db
from backoffice.housekeeping import compact_metric_totals
from backoffice.jobs import claim_once, clear_stale_markers, enqueue_in, enqueue_once, report_progress

log = logging.getLogger(__name__)
EVENTS = StripeEvent.__table__
STATES = StripeEventState.__table__
PLATFORM = "replay:platform"
REPLAY_BATCH = 50


REPLAY_KEYS = "replay:"
# A job that found PostgreSQL away tries again after 1, 2, 4… seconds, never more than this apart, so the backlog
# drains soon after the database returns rather than at the next minute's sweep.
RETRY_CAP_SECONDS = 8


def replay_key(customer_id: str) -> str:
    return f"{REPLAY_KEYS}{customer_id}"


def retry_delay(attempt: int) -> float:
    """Seconds before the next try of a job that found the database away (attempt 0 is the first retry)."""
    return float(min(2 ** attempt, RETRY_CAP_SECONDS))


def database_unavailable(error: BaseException) -> bool:
    """Whether an error (or one it came from) says PostgreSQL could not be reached, rather than a bug or bad data."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, OperationalError) or (isinstance(seen, DBAPIError) and seen.connection_invalidated):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def request_replay(customer_id: str | None) -> bool:
    """Queue a replay of the customer unless one is already queued (one Redis call in the common case)."""
    if customer_id is None:
        return enqueue_once(PLATFORM, replay_platform_events)
    return enqueue_once(replay_key(customer_id), replay_customer, customer_id)


def gateway() -> Any:
    """The Stripe gateway, or None when Stripe is not configured (replay then works from the archive alone)."""
    from backoffice.stripe_gateway import StripeNotConfigured, gateway_from_config

    try:
        return gateway_from_config(current_app.config)
    except StripeNotConfigured:
        return None


def replay_customer(customer_id: str, attempt: int = 0) -> dict[str, Any]:
    """Replay one customer once its newest arrival has settled (DESIGN §4.4); record a failure on its events.

    Not settled yet: the job queues itself again for when it will be, rather than holding a worker. PostgreSQL
    away: the events stay pending and the job queues itself again after a short, growing pause.
    """
    claim_once(replay_key(customer_id))
    try:
        wait = _unsettled_for(customer_id)
        if wait > 0:
            enqueue_once(replay_key(customer_id), replay_customer, customer_id, delay=wait)
            return {"customer": customer_id, "settling": round(wait, 3)}
        replayer = Replayer(db.session, ReplaySettings.from_config(current_app.config), gateway())
        report = run_replay(replayer, customer_id)
    except SQLAlchemyError as error:
        if not database_unavailable(error):
            raise
        db.session.rollback()
        delay = retry_delay(attempt)
        log.warning("replay of customer %s put off %.0f s, PostgreSQL unavailable: %s", customer_id, delay,
                    type(error).__name__)
        enqueue_once(replay_key(customer_id), replay_customer, customer_id, attempt + 1, delay=delay)
        return {"customer": customer_id, "database_unavailable": True, "retry_in": delay}
    return report.as_dict()


def run_replay(replayer: Replayer, customer_id: str, *, commit: bool = True,
               payloads: Payloads | None = None, restore: Restore | None = None) -> ReplayReport:
    """One customer, in a savepoint; on failure its unsettled events move to `failed` with the error.

    With `commit=False` the caller commits (a batch of customers per transaction, for `replay --all`).
    """
    savepoint = db.session.begin_nested()
    try:
        report = replayer.replay(customer_id, payloads, restore)
        savepoint.commit()
    except Exception as error:
        savepoint.rollback()
        log.exception("replay of customer %s failed", customer_id)
        message = f"{type(error).__name__}: {error}"[:2000]
        db.session.execute(update(STATES).where(
            STATES.c.stripe_event_id == EVENTS.c.id, EVENTS.c.stripe_customer_id == customer_id,
            STATES.c.status.in_(("pending", "failed"))
        ).values(status="failed", error=message, processed_at=func.now()))
        report = ReplayReport(customer_id, reason=message, failed=True)
    if commit:
        db.session.commit()
    return report


def _replay_chunk(replayer: Replayer, customer_ids: list[str], payloads: Payloads | None = None) -> list[ReplayReport]:
    """A batch of customers in one transaction; should it fail, each alone, so one bad customer stops no other.

    A batch that PostgreSQL ended to break a deadlock with a concurrent replay (another shard, a worker's job: they
    share the days of the rollups) is simply run again: the same work succeeds once the other has committed.
    """
    for attempt in range(1, BATCH_ATTEMPTS + 1):
        savepoint = db.session.begin_nested()
        try:
            reports = replayer.replay_many(customer_ids, payloads)
            savepoint.commit()
            db.session.commit()
            return reports
        except Exception as error:
            savepoint.rollback()
            if attempt < BATCH_ATTEMPTS and lock_conflict(error):
                log.warning("replay of a batch of %d customers met a concurrent replay's locks (attempt %d): "
                            "running it again", len(customer_ids), attempt)
                continue
            log.warning("replay of a batch of %d customers failed; replaying them one by one", len(customer_ids))
            break
    return [run_replay(replayer, customer_id, payloads=payloads) for customer_id in customer_ids]


BATCH_ATTEMPTS = 3
# SQLSTATEs of a transaction PostgreSQL ended for another's sake: deadlock detected, serialization failure.
LOCK_CONFLICTS = ("40P01", "40001")


def lock_conflict(error: BaseException) -> bool:
    """Whether an error (or one it came from) is PostgreSQL breaking a deadlock or a serialization conflict."""
    seen: BaseException | None = error
    while seen is not None:
        if getattr(seen, "sqlstate", None) in LOCK_CONFLICTS:
            return True
        seen = getattr(seen, "orig", None) or seen.__cause__ or seen.__context__
    return False


def _unsettled_for(customer_id: str) -> float:
    """Seconds until the customer's oldest pending arrival has waited SETTLE_SECONDS (0: replay now).

    DESIGN §4.4 waits for the newest arrival to be that old; under steady traffic a customer's newest
    arrival never is, and its replay would wait for the traffic to stop. Counting from the oldest still
    gathers a burst into one replay and bounds the wait; a straggler later in the burst is simply late.
    """
    settle = current_app.config["SETTLE_SECONDS"]
    if not settle:
        return 0.0
    oldest = db.session.scalar(select(func.min(EVENTS.c.received_at)).select_from(archived_with_states()).where(
        EVENTS.c.stripe_customer_id == customer_id, STATES.c.status == "pending"))
    db.session.rollback()
    if oldest is None:
        return 0.0
    return max(0.0, min(settle, settle - (datetime.now(UTC) - oldest).total_seconds()))


def replay_platform_events() -> dict[str, int]:
    """Settle archived events that belong to no customer (catalog, coupons, refunds…): no ledger row."""
    claim_once(PLATFORM)
    return _settle_platform()


def _settle_platform() -> dict[str, int]:
    from backoffice.billing.replay.platform_events import settle_platform_events

    counts = settle_platform_events(db.session)
    db.session.commit()
    return counts


def replay_all(customer_ids: list[str] | None = None, *, progress: Callable[[int, int], None] | None = None,
               processes: int | None = None) -> dict[str, int]:
    """Replay every customer with unsettled events (or the given ones), a batch of customers per transaction.

    `processes`: how many processes share the customers, by a stable hash of their id (`shards`); default the
    usable CPUs, or 1 for fewer than PARALLEL_FROM customers, where starting processes costs more than it saves.
    1 replays in this process, the only way when the session is bound to one connection (the tests' rolled-back
    transaction), which no other process can see. `progress(done, total)` counts customers, as does the job's.
    Raises `ReplayShardFailed` when a process fails.
    """
    if customer_ids is None:
        customer_ids = unsettled_customers()
    # Catalog changes first, so that the customers' replays know every price; once, before any shard starts.
    platform_events = sum(_settle_platform().values())
    processes = _process_count(processes, len(customer_ids))
    done = 0

    def advance(customers: int) -> None:
        nonlocal done
        done += customers
        report_progress(step=done, total=len(customer_ids), processes=processes)
        if progress is not None:
            progress(done, len(customer_ids))

    if processes == 1:
        totals = replay_customers(customer_ids, progress=advance)
    else:
        db.session.remove()  # nothing of this process's stays open while the shards write
        shards = run_shards(current_app._get_current_object(), split(customer_ids, processes), advance)
        totals = {name: sum(shard[name] for shard in shards) for name in REPLAY_TOTALS}
    totals["platform_events"] = platform_events
    totals["processes"] = processes
    compact_metric_totals()  # a whole replay appends many; the scheduler would fold them within minutes too
    return totals


PARALLEL_FROM = 4 * REPLAY_BATCH
REPLAY_TOTALS = ("customers", "appended", "corrected", "processed", "ignored", "failed", "waiting")


def _process_count(asked: int | None, customers: int) -> int:
    if not isinstance(db.engine, Engine):
        return 1  # a test's one connection: its uncommitted rows exist for no other process
    if asked is None:
        asked = usable_cpus() if customers >= PARALLEL_FROM else 1
    if asked < 1:
        raise ValueError(f"a replay needs at least one process, not {asked}")
    return max(1, min(asked, customers))


def unsettled_customers() -> list[str]:
    """Every customer with pending, failed or ignored archived events, in id order."""
    customer_ids = list(db.session.scalars(
        select(EVENTS.c.stripe_customer_id).select_from(archived_with_states())
        .where(EVENTS.c.stripe_customer_id.is_not(None), STATES.c.status.in_(UNSETTLED))
        .distinct().order_by(EVENTS.c.stripe_customer_id)))
    db.session.rollback()
    return customer_ids


def replay_customers(customer_ids: list[str], *, progress: Callable[[int], None] | None = None,
                     collect_every: int | None = None) -> dict[str, int]:
    """Replay these customers in this process, a batch per transaction, payloads read one batch ahead; return the
    totals. `progress(customers)` after each batch. What `replay_all` runs, here or in each shard's process.

    `collect_every`: for a process of the replay's own (a shard), run the cycle collector only once every so many
    batches (`CollectedEvery`); None leaves the collector as a shared process (a worker, the CLI, a test) has it.
    """
    replayer = Replayer(db.session, ReplaySettings.from_config(current_app.config), gateway())
    totals = dict.fromkeys(REPLAY_TOTALS, 0)
    batches = [customer_ids[start:start + REPLAY_BATCH] for start in range(0, len(customer_ids), REPLAY_BATCH)]
    # A test binds the session to its one connection, which no second thread may share: nothing is read ahead then.
    engine = db.engine if isinstance(db.engine, Engine) else None
    with CollectedEvery(collect_every) as collector:
        for chunk, payloads in ReadAhead(engine, batches):
            for report in _replay_chunk(replayer, chunk, payloads):
                totals["customers"] += 1
                totals["failed"] += report.failed
                totals["waiting"] += report.waiting
                for name in ("appended", "corrected", "processed", "ignored"):
                    totals[name] += getattr(report, name)
            del payloads
            collector.batch_done()
            if progress is not None:
                progress(len(chunk))
    return totals


COLLECT_EVERY = 10  # batches between two cycle collections of a long replay (read_ahead.CollectedEvery)


SWEEP_AFTER_SECONDS = 30


def sweep_pending(older_than: float = SWEEP_AFTER_SECONDS, attempt: int = 0) -> dict[str, Any]:
    """Queue a replay for every customer whose archived events waited too long (Redis was down, a job was lost),
    and clear the queued-replay markers whose job is gone. The archive is the truth of what is pending: a marker
    only says a job is on its way, and one whose job was lost is replaced, never obeyed.

    PostgreSQL away: the sweep queues itself again after a short, growing pause rather than waiting a minute.
    """
    cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
    try:
        customers = _customers_with(STATES.c.status == "pending", EVENTS.c.received_at <= cutoff)
    except SQLAlchemyError as error:
        if not database_unavailable(error):
            raise
        db.session.rollback()
        delay = retry_delay(attempt)
        log.warning("pending sweep put off %.0f s, PostgreSQL unavailable: %s", delay, type(error).__name__)
        enqueue_in(delay, sweep_pending, older_than, attempt + 1, queue="high", job_id=f"sweep-retry-{attempt + 1}")
        return {"queued": 0, "database_unavailable": True, "retry_in": delay}
    stale = clear_stale_markers(REPLAY_KEYS)
    return {"queued": sum(request_replay(customer) for customer in customers), "stale_markers": stale}


def recheck_ignored() -> dict[str, int]:
    """Re-examine ignored events hourly: their tenant may exist now, or their API version may be allowed."""
    customers = _customers_with(STATES.c.status == "ignored", EVENTS.c.stripe_customer_id.is_not(None))
    return {"queued": sum(request_replay(customer) for customer in customers)}


def _customers_with(*conditions: Any) -> list[str | None]:
    """Distinct customers of the matching archive rows (None stands for events that name no customer)."""
    customers = list(db.session.scalars(select(EVENTS.c.stripe_customer_id).select_from(archived_with_states())
                                        .where(*conditions).distinct()))
    db.session.rollback()
    return customers


def refresh_catalog() -> dict[str, Any]:
    """Store every Stripe price with its plan (when a worker starts, and hourly)."""
    from backoffice.billing.ledger.catalog import refresh_catalog as refresh

    stripe = gateway()
    if stripe is None:
        log.info("catalog refresh skipped: Stripe is not configured")
        return {"skipped": "Stripe is not configured"}
    count = refresh(db.session, stripe)
    db.session.commit()
    return {"prices": count}

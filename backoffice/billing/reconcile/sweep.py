"""The drift sweep (DESIGN §2.4): detect-only checks of every subscription due, fanned out over the workers.

One `subscriptions.list` call returns up to 100 subscriptions, so the coordinator pages the platform's
subscriptions (one Stripe request per 100) and hands each page to a chunk job that checks the due local
subscriptions it covers against their local facts. A check writes only the drift columns (no row lock).
A subscription whose check fails is listed with its error and the pass goes on; one Stripe never listed
(the listing failed half-way) keeps its old `drift_checked_at`, so it is due again next time.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from backoffice.billing.models import Subscription, SyncState
from backoffice.billing.reconcile import drift
from backoffice.billing.reconcile.sync import live_of

log = logging.getLogger(__name__)

SWEEP = "drift_sweep"
STALENESS = timedelta(hours=23)
# A check that takes longer than this is abandoned (and listed as failed) so one account cannot stall a pass.
CHECK_TIMEOUT_MS = 30_000
SUBSCRIPTIONS = Subscription.__table__


def due_filter(now: datetime, staleness: timedelta = STALENESS):
    return (SUBSCRIPTIONS.c.stripe_customer_id.is_not(None),
            or_(SUBSCRIPTIONS.c.drift_checked_at.is_(None), SUBSCRIPTIONS.c.drift_checked_at < now - staleness))


def due_count(session: Session, now: datetime) -> int:
    return session.scalar(select(func.count()).where(*due_filter(now)))


@dataclass(frozen=True)
class SweepState:
    """The latest sweep as the jobs page shows it."""

    id: str
    started_at: datetime
    due: int
    pages: int
    listed: bool  # Stripe's listing completed
    error: str | None
    failures: list[dict[str, Any]]
    checked: int
    finished_at: datetime | None

    @property
    def remaining(self) -> int:
        return max(0, self.due - self.checked - len(self.failures))

    def eta_seconds(self, now: datetime) -> float | None:
        """Seconds left at the rate so far; None before anything was checked or once done."""
        done = self.checked + len(self.failures)
        if not done or not self.remaining:
            return None
        return (now - self.started_at).total_seconds() / done * self.remaining


def save_state(session: Session, values: dict[str, Any], now: datetime) -> None:
    statement = insert(SyncState).values(key=SWEEP, value=values, updated_at=now)
    session.execute(statement.on_conflict_do_update(index_elements=[SyncState.key],
                                                    set_={"value": statement.excluded.value, "updated_at": now}))


def merge_state(session: Session, changes: dict[str, Any], now: datetime) -> None:
    """Merge keys into the sweep's state in one statement, so concurrent chunk jobs do not overwrite each other."""
    session.execute(text("UPDATE sync_state SET value = value || CAST(:changes AS jsonb), updated_at = :now "
                         "WHERE key = :key"), {"changes": _json(changes), "now": now, "key": SWEEP})


def add_failures(session: Session, failures: list[dict[str, Any]], now: datetime) -> None:
    if failures:
        session.execute(text("UPDATE sync_state SET value = jsonb_set(value, '{failures}', "
                             "coalesce(value->'failures', '[]'::jsonb) || CAST(:failures AS jsonb)), updated_at = :now "
                             "WHERE key = :key"), {"failures": _json(failures), "now": now, "key": SWEEP})


def _json(value: Any) -> str:
    return json.dumps(value, default=str)


def read_state(session: Session) -> SweepState | None:
    row = session.scalar(select(SyncState.value).where(SyncState.key == SWEEP))
    if not row:
        return None
    started = datetime.fromisoformat(row["started_at"])
    checked = session.scalar(select(func.count()).where(SUBSCRIPTIONS.c.drift_checked_at >= started))
    finished = row.get("finished_at")
    return SweepState(row["id"], started, int(row.get("due", 0)), int(row.get("pages", 0)), bool(row.get("listed")),
                      row.get("error"), list(row.get("failures") or []), min(checked, int(row.get("due", 0))),
                      datetime.fromisoformat(finished) if finished else None)


def list_pages(gateway: Any, page_size: int = 100) -> Iterator[list[dict[str, Any]]]:
    """Every subscription on the platform, a page (one Stripe request) at a time."""
    starting_after = None
    while True:
        page = gateway.subscriptions_page(starting_after=starting_after, limit=page_size)
        if page["data"]:
            yield page["data"]
        if not page["has_more"] or not page["data"]:
            return
        starting_after = page["data"][-1]["id"]


def check_page(session: Session, live_subscriptions: Iterable[dict[str, Any]], pricing: Any, *, now: datetime,
               staleness: timedelta = STALENESS) -> tuple[int, list[dict[str, Any]]]:
    """Check the due local subscriptions this page of Stripe subscriptions covers; return (checked, failures)."""
    by_customer: dict[str, list[dict[str, Any]]] = {}
    for live in live_subscriptions:
        customer = live.get("customer")
        customer = customer.get("id") if isinstance(customer, dict) else customer
        if customer:
            by_customer.setdefault(customer, []).append(live)
    due = session.scalars(select(Subscription).where(*due_filter(now, staleness),
                                                     SUBSCRIPTIONS.c.stripe_customer_id.in_(list(by_customer))))
    checked, failures = 0, []
    for subscription in due:
        savepoint = session.begin_nested()
        try:
            session.execute(text(f"SET LOCAL statement_timeout = {CHECK_TIMEOUT_MS}"))
            live = live_of(by_customer[subscription.stripe_customer_id], pricing)
            found = drift.durable_discrepancies(session, subscription)
            if live.plan or subscription.plan:
                found += drift.state_discrepancies(subscription, live)
            drift.record(session, subscription.id, found, now)
            savepoint.commit()
            checked += 1
        except Exception as error:  # noqa: BLE001 - one account's failure is listed, the pass goes on
            savepoint.rollback()
            failures.append({"subscription": subscription.id, "tenant": subscription.tenant_id,
                             "error": f"{type(error).__name__}: {error}"[:300], "at": now.isoformat()})
    return checked, failures


def run_listing(session: Session, gateway: Any, enqueue_page: Callable[[list[dict[str, Any]]], None], now: datetime,
                sweep_id: str) -> SweepState | None:
    """Start a sweep: record its state, page Stripe's subscriptions and hand each page to a chunk job."""
    save_state(session, {"id": sweep_id, "started_at": now.isoformat(), "due": due_count(session, now), "pages": 0,
                         "listed": False, "failures": []}, now)
    session.commit()
    pages = 0
    try:
        for page in list_pages(gateway):
            enqueue_page([_slim(subscription) for subscription in page])
            pages += 1
            merge_state(session, {"pages": pages}, now)
            session.commit()
    except Exception as error:  # noqa: BLE001 - the unlisted stay due; the page says why
        log.warning("drift sweep %s: Stripe's listing failed after %d pages: %s", sweep_id, pages, error)
        merge_state(session, {"error": f"{type(error).__name__}: {error}"[:300]}, now)
        session.commit()
        return read_state(session)
    merge_state(session, {"listed": True}, now)
    session.commit()
    return read_state(session)


def _slim(subscription: dict[str, Any]) -> dict[str, Any]:
    """What a check reads of a Stripe subscription (jobs carry plain values, and small ones)."""
    items = [{"price": {"id": (item.get("price") or {}).get("id"), "currency": (item.get("price") or {}).get("currency"),
                        "metadata": (item.get("price") or {}).get("metadata") or {}},
              "quantity": item.get("quantity")}
             for item in (subscription.get("items") or {}).get("data", [])]
    customer = subscription.get("customer")
    return {"id": subscription.get("id"), "customer": customer.get("id") if isinstance(customer, dict) else customer,
            "status": subscription.get("status"), "cancel_at_period_end": subscription.get("cancel_at_period_end"),
            "currency": subscription.get("currency"), "created": subscription.get("created"),
            "items": {"object": "list", "data": items}}

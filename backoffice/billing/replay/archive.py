"""Reading a customer's archive for a replay (DESIGN §2.2, §4.4): its events with their payloads, the refunds and
invoice payments that name no customer but belong to its charges and invoices, its effective ledger rows, and the
advisory lock that serializes every replay of a customer on any machine."""
from __future__ import annotations

from collections import ChainMap
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Select,
    Text,
    any_,
    bindparam,
    cast,
    literal_column,
    select,
    text,
    union,
)
from sqlalchemy.orm import Session

from backoffice.billing.ledger.ordering import ArchivedEvent
from backoffice.billing.ledger.rules import BASELINE, LedgerRow
from backoffice.billing.models import (
    BillingEvent,
    StripeEvent,
    StripeEventState,
    archived_with_states,
    effective_billing_events,
    payload_object_field,
)


def payload_field(name: str) -> ColumnElement[str]:
    """A field of an archived event's `data.object`, as a column its expression index serves."""
    return literal_column(payload_object_field(name).text, Text)


EVENTS = StripeEvent.__table__
STATES = StripeEventState.__table__
LEDGER = BillingEvent.__table__


UNSETTLED = ("pending", "failed", "ignored")


# The planner's cost of a random page read for a replay's transaction. A batch reads and writes a few thousand rows
# by key (its events' states, its subscriptions' ledger) in tables that grow with the archive; at PostgreSQL's
# default of 4, priced for disks that seek, it chose to scan all of stripe_event_states for the batch's events at
# every batch. 1.1 prices what a replay meets: pages in memory or on SSD. Measured over the 448,440-event archive
# (benchmarks/README.md): 5,353 → 6,398 events/s, the same rows written.
RANDOM_PAGE_COST = "1.1"


def plan_for_keyed_reads(session: Session) -> None:
    """Price random page reads as the replay meets them, for the rest of the transaction only."""
    session.execute(text("SELECT set_config('random_page_cost', :cost, true)"), {"cost": RANDOM_PAGE_COST})


def lock_customers(session: Session, customer_ids: list[str]) -> None:
    """Serialize every replay of these customers, on any machine, until the transaction ends (in the given order)."""
    keys = [f"replay:{customer_id}" for customer_id in customer_ids]
    session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(key, 0)) "
                         "FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS k(key, n) ORDER BY n"), {"keys": keys})


# What a replay reads of each archived event, but for its payload: a payload never changes (§4.7), so it may be
# read apart from the rest, even ahead of the customer's lock; statuses and the set of events may not.
ARCHIVE_HEADS = (EVENTS.c.id, EVENTS.c.type, EVENTS.c.stripe_created_at, EVENTS.c.api_version, STATES.c.status,
                 STATES.c.tenant_id, EVENTS.c.stripe_customer_id)
Payloads = Mapping[str, dict[str, Any]]


class ArchiveRow(NamedTuple):
    """An archived event as a replay reads it: its head under the lock, its payload read then or before."""

    id: str
    type: str
    stripe_created_at: datetime
    api_version: str | None
    status: str
    tenant_id: str | None
    stripe_customer_id: str | None
    payload: dict[str, Any]


def customer_events(session: Session, customer_ids: list[str], payloads: Payloads | None = None
                    ) -> dict[str, list[ArchiveRow]]:
    """Every archived event of these customers, by customer, with the refunds and invoice payments that name none.

    `payloads` (by event id, from `read_payloads`, maybe read before this transaction) spares reading those
    bodies again; any event it lacks, such as one archived since, has its payload read here.
    """
    heads = session.execute(select(*ARCHIVE_HEADS).select_from(archived_with_states())
                            .where(EVENTS.c.stripe_customer_id.in_(customer_ids))).all()
    bodies = _with_missing_payloads(session.connection(), heads, payloads or {})
    events: dict[str, list[ArchiveRow]] = {customer_id: [] for customer_id in customer_ids}
    for head in heads:
        events[head.stripe_customer_id].append(ArchiveRow(*head, bodies[head.id]))
    charges, invoices = _charges_and_invoices(
        (customer_id, row.payload) for customer_id, rows in events.items() for row in rows)
    linked_heads = linked_events(session, set(charges), set(invoices))
    bodies = _with_missing_payloads(session.connection(), linked_heads, bodies)
    for head in linked_heads:
        row = ArchiveRow(*head, bodies[head.id])
        obj = (row.payload.get("data") or {}).get("object") or {}
        customer_id = charges.get(obj.get("charge")) or invoices.get(obj.get("invoice"))
        if customer_id:
            events[customer_id].append(row)
    return events


def read_payloads(connection: Connection, customer_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The payloads `customer_events` will want for these customers, by event id, read on any connection.

    Read as text and parsed here, so that a thread reading ahead also takes the parsing off the replay's path.
    """
    rows = connection.execute(select(EVENTS.c.id, EVENTS.c.stripe_customer_id, cast(EVENTS.c.payload, Text))
                              .where(EVENTS.c.stripe_customer_id.in_(customer_ids))).all()
    payloads = {event_id: orjson.loads(body) for event_id, _, body in rows}
    charges, invoices = _charges_and_invoices((customer_id, payloads[event_id]) for event_id, customer_id, _ in rows)
    if charges or invoices:
        payloads.update((event_id, orjson.loads(body)) for event_id, body in connection.execute(union(
            *_linked_selects(set(charges), set(invoices), EVENTS, EVENTS.c.id, cast(EVENTS.c.payload, Text)))))
    return payloads


def _with_missing_payloads(connection: Connection, heads: Sequence[Any], payloads: Payloads) -> Payloads:
    """`payloads` with those of `heads` it lacks read in."""
    missing = [head.id for head in heads if head.id not in payloads]
    if not missing:
        return payloads
    found = dict(connection.execute(select(EVENTS.c.id, cast(EVENTS.c.payload, Text))
                                    .where(EVENTS.c.id == any_(bindparam("ids", missing, type_=ARRAY(Text))))).all())
    return ChainMap({event_id: orjson.loads(body) for event_id, body in found.items()}, payloads)


def stored_baselines(session: Session, subscription_id: str) -> list[LedgerRow]:
    """A subscription's LedgerBaseline rows as the rules take them."""
    columns = [LEDGER.c[name] for name in ("stripe_event_id", *LedgerRow.VALUE_FIELDS, "currency", "occurred_at",
                                            "position")]
    return [LedgerRow(**row._mapping) for row in session.execute(
        select(*columns).where(LEDGER.c.subscription_id == subscription_id, LEDGER.c.event_type == BASELINE))]


def effective_rows_of(session: Session, subscription_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The effective ledger rows of these subscriptions, by subscription and Stripe event id."""
    view = effective_billing_events
    rows: dict[str, dict[str, Any]] = {}
    if subscription_ids:
        for row in session.execute(select(view).where(view.c.subscription_id.in_(subscription_ids))):
            rows.setdefault(row.subscription_id, {})[row.stripe_event_id] = row
    return rows


def _charges_and_invoices(payloads: Iterable[tuple[str, dict[str, Any]]]) -> tuple[dict[str, str], dict[str, str]]:
    """The charges and invoices that these (customer, payload) pairs are about, each with its customer."""
    charges: dict[str, str] = {}
    invoices: dict[str, str] = {}
    for customer_id, payload in payloads:
        obj = (payload.get("data") or {}).get("object") or {}
        if obj.get("object") == "charge" and obj.get("id"):
            charges[obj["id"]] = customer_id
        elif obj.get("object") == "invoice" and obj.get("id"):
            invoices[obj["id"]] = customer_id
    return charges, invoices


def linked_events(session: Session, charges: set[str], invoices: set[str]) -> list[Any]:
    """Heads of the events that name no customer but belong to these charges or invoices (refunds, invoice payments)."""
    if not charges and not invoices:
        return []
    return session.execute(union(*_linked_selects(charges, invoices, archived_with_states(), *ARCHIVE_HEADS))).all()


def _linked_selects(charges: set[str], invoices: set[str], archive: Any, *columns: Any) -> list[Select[Any]]:
    # One SELECT per field, each with the very expression and predicate of its partial index.
    no_customer = EVENTS.c.stripe_customer_id.is_(None)
    return [select(*columns).select_from(archive).where(no_customer, payload_field("charge").in_(charges)),
            select(*columns).select_from(archive).where(no_customer, payload_field("invoice").in_(invoices))]


def as_archived(rows: Iterable[Any]) -> list[ArchivedEvent]:
    return [ArchivedEvent(row.id, row.type, int(row.stripe_created_at.timestamp()), row.api_version, row.payload)
            for row in rows]

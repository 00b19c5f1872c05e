"""The replay: a customer's archive turned into ledger rows, corrections, rollups and the projection (DESIGN §2.2).

The only writer of `billing_events`. It runs per Stripe customer under a PostgreSQL advisory lock, in one
transaction, and recomputes the customer's rows from its whole archive in the §4.4 order: new events get
rows, rows whose values the late events changed get corrections (§4.6), and the archive rows move on
through their status machine (§4.7). Plain Python over a SQLAlchemy session; the job and the CLI wrap it.
"""
from __future__ import annotations

import gc
import logging
import secrets
from collections import ChainMap, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, NamedTuple

import orjson
from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Connection,
    Engine,
    Insert,
    Select,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    func,
    literal_column,
    select,
    text,
    union,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from backoffice.accounts.models import Tenant
from backoffice.billing import drift, projection
from backoffice.billing.ledger_rules import BASELINE, LedgerRow, Note, Replayed
from backoffice.billing.models import (
    BillingEvent,
    BillingEventCorrection,
    MrrDaily,
    PaymentTransaction,
    StripeEvent,
    Subscription,
    effective_billing_events,
    payload_object_field,
)
from backoffice.billing.ordering import ArchivedEvent
from backoffice.billing.payments import AMOUNT_CLAMPED, Payment, fold_payments
from backoffice.billing.pricing import FREE_PLAN, ZERO, MissingKnowledge, SubscriptionAmounts
from backoffice.billing.rulebook import ReplaySettings, load_rules

log = logging.getLogger(__name__)


def payload_field(name: str) -> ColumnElement[str]:
    """A field of an archived event's `data.object`, as a column its expression index serves."""
    return literal_column(payload_object_field(name).text, Text)


EVENTS = StripeEvent.__table__
LEDGER = BillingEvent.__table__
CORRECTIONS = BillingEventCorrection.__table__
ROLLUP = MrrDaily.__table__
PAYMENTS = PaymentTransaction.__table__


def insert_unnested(table: Table, columns: Sequence[str]) -> Insert:
    """An INSERT of any number of rows in one statement: each column is bound as one array and unnested.

    PostgreSQL plans and runs it once, where `executemany` runs one INSERT per row (twice the server's time
    for a batch's ledger rows). Execute it with `as_columns(rows)`.
    """
    arrays = [bindparam(name, type_=ARRAY(table.c[name].type)) for name in columns]
    rows = func.unnest(*arrays).table_valued(*columns).render_derived()
    return insert(table).from_select(list(columns), select(*(rows.c[name] for name in columns)))


def as_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows of the same keys, as one list per key (the parameters of `insert_unnested`)."""
    return {name: [row[name] for row in rows] for name in rows[0]}


_ledger_columns = ("id", "tenant_id", "subscription_id", "stripe_event_id", "currency", "occurred_at", "position",
                   "cancellation_reason", "suspension_reason", *LedgerRow.VALUE_FIELDS)
LEDGER_INSERT = insert_unnested(LEDGER, _ledger_columns).on_conflict_do_nothing(index_elements=["stripe_event_id"])
CORRECTION_INSERT = insert_unnested(
    CORRECTIONS, ("billing_event_id", "caused_by", "reason", "position", *LedgerRow.VALUE_FIELDS))
_payment_columns = [column.name for column in PAYMENTS.columns if column.name != "created_at"]
_payment_insert = insert_unnested(PAYMENTS, _payment_columns)
PAYMENT_UPSERT = _payment_insert.on_conflict_do_update(
    index_elements=[PAYMENTS.c.id],
    set_={name: _payment_insert.excluded[name] for name in _payment_columns if name != "id"})
UNSETTLED = ("pending", "failed", "ignored")
DUPLICATE_CUSTOMER = "DuplicateCustomerForTenant"
UNKNOWN_TENANT = "UnknownTenant"


@dataclass(frozen=True)
class Restore:
    """A replay that also writes the rows of already processed events that have none (DESIGN §4.11): those
    after `after` (a Sync: Stripe's 30-day window; a disaster recovery: its cutoff), with `baseline` first."""

    after: datetime
    baseline: LedgerRow | None = None


@dataclass
class ReplayReport:
    """What one customer's replay did."""

    customer_id: str
    tenant_id: str | None = None
    appended: int = 0
    corrected: int = 0
    processed: int = 0
    ignored: int = 0
    reason: str | None = None  # why nothing was replayed, when nothing was
    failed: bool = False
    waiting: bool = False  # on a price, discount or coupon that could not be had: the events stay pending
    notes: list[Note] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"customer": self.customer_id, "tenant": self.tenant_id, "appended": self.appended,
                "corrected": self.corrected, "processed": self.processed, "ignored": self.ignored,
                "reason": self.reason, "waiting": self.waiting, "notes": [note.__dict__ for note in self.notes]}


@contextmanager
def paused_cycle_collection() -> Iterator[None]:
    """Hold off Python's cycle collector while a batch is in hand.

    A batch keeps thousands of decoded payloads alive at once; the collector, triggered by their allocation,
    would traverse them again and again (a third of a replay's time) to find the few cycles a batch makes.
    Those are collected as usual once the batch is done and its payloads freed, so memory stays as flat as before.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


def lock_customers(session: Session, customer_ids: list[str]) -> None:
    """Serialize every replay of these customers, on any machine, until the transaction ends (in the given order)."""
    keys = [f"replay:{customer_id}" for customer_id in customer_ids]
    session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(key, 0)) "
                         "FROM unnest(CAST(:keys AS text[])) WITH ORDINALITY AS k(key, n) ORDER BY n"), {"keys": keys})


# What a replay reads of each archived event, but for its payload: a payload never changes (§4.7), so it may be
# read apart from the rest, even ahead of the customer's lock; statuses and the set of events may not.
ARCHIVE_HEADS = (EVENTS.c.id, EVENTS.c.type, EVENTS.c.stripe_created_at, EVENTS.c.api_version, EVENTS.c.status,
                 EVENTS.c.tenant_id, EVENTS.c.stripe_customer_id)
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
    heads = session.execute(select(*ARCHIVE_HEADS).where(EVENTS.c.stripe_customer_id.in_(customer_ids))).all()
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
            *_linked_selects(set(charges), set(invoices), EVENTS.c.id, cast(EVENTS.c.payload, Text)))))
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
    return session.execute(union(*_linked_selects(charges, invoices, *ARCHIVE_HEADS))).all()


def _linked_selects(charges: set[str], invoices: set[str], *columns: Any) -> list[Select[Any]]:
    # One SELECT per field, each with the very expression and predicate of its partial index.
    no_customer = EVENTS.c.stripe_customer_id.is_(None)
    return [select(*columns).where(no_customer, payload_field("charge").in_(charges)),
            select(*columns).where(no_customer, payload_field("invoice").in_(invoices))]


def as_archived(rows: Iterable[Any]) -> list[ArchivedEvent]:
    return [ArchivedEvent(row.id, row.type, int(row.stripe_created_at.timestamp()), row.api_version, row.payload)
            for row in rows]


class ReadAhead:
    """Batches of customers, each with its events' payloads, read on a connection of its own one batch ahead.

    While one batch is replayed, a thread reads and parses the next batch's payloads, so PostgreSQL's rendering
    of jsonb and the parsing leave the replay's path. Safe because a payload never changes (§4.7); the replay
    still reads which events a customer has, and their statuses, under the customer's lock, and reads there
    any payload not read ahead. One batch ahead at most: memory stays flat.
    """

    def __init__(self, engine: Engine | None, batches: Sequence[list[str]]):
        self.engine = engine  # None: read nothing ahead
        self.batches = batches

    def __iter__(self) -> Iterator[tuple[list[str], Payloads]]:
        engine = self.engine
        if engine is None:
            yield from ((customer_ids, {}) for customer_ids in self.batches)
            return
        if not self.batches:
            return
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-read-ahead")
        try:
            ahead = pool.submit(self._read, engine, self.batches[0])
            for index, customer_ids in enumerate(self.batches):
                payloads = self._payloads(ahead)
                if index + 1 < len(self.batches):
                    ahead = pool.submit(self._read, engine, self.batches[index + 1])
                yield customer_ids, payloads
                del payloads
        finally:
            pool.shutdown(cancel_futures=True)

    @staticmethod
    def _read(engine: Engine, customer_ids: list[str]) -> dict[str, dict[str, Any]]:
        with engine.connect() as connection:
            # The caller waits for this read: were the caller's own open transaction to hold a lock it needs,
            # waiting for the lock would wait forever. Rather give up; the batch then reads its own payloads.
            connection.execute(text("SET LOCAL lock_timeout = '2s'"))
            return read_payloads(connection, customer_ids)

    @staticmethod
    def _payloads(ahead: Future[dict[str, dict[str, Any]]]) -> Payloads:
        try:
            return ahead.result()
        except Exception:
            # Only a shortcut failed: the replay reads under the lock whatever payload it was not given.
            log.warning("reading payloads ahead failed; the batch reads its own", exc_info=True)
            return {}


class Replayer:
    """Replays customers with one catalog and one set of rules (a job, or a whole `--all` run)."""

    def __init__(self, session: Session, settings: ReplaySettings, gateway: Any = None):
        self.session = session
        self.settings = settings
        self.gateway = gateway
        self.rules = load_rules(session, settings, gateway)
        self.pricing = self.rules.pricing
        self.catalog = self.pricing.catalog
        self._charge_invoices: dict[str, str | None] = {}  # a charge pays one invoice for good: asked once per run
        self.restore: Restore | None = None
        self.restatement: str | None = None

    def charge_invoice(self, charge_id: str) -> str | None:
        """The invoice of a refunded charge the archive cannot tie to one (basil: no `invoice` on the charge, and
        no invoice_payment.paid archived), from Stripe; None, logged, when Stripe is not configured or fails."""
        if charge_id in self._charge_invoices:
            return self._charge_invoices[charge_id]
        invoice = None
        if self.gateway is None:
            log.warning("charge %s names no invoice in the archive and Stripe is not configured: its refunds stay "
                        "unlinked", charge_id)
        else:
            from backoffice.stripe_gateway import StripeGatewayError

            try:
                invoice = self.gateway.charge_invoice(charge_id)
            except StripeGatewayError as error:
                log.warning("charge %s names no invoice in the archive and Stripe could not say which it paid: its "
                            "refunds stay unlinked: %s", charge_id, error)
            else:
                if invoice is None:
                    log.warning("charge %s paid no invoice, says Stripe: its refunds stay unlinked", charge_id)
        self._charge_invoices[charge_id] = invoice
        return invoice

    # --- customers ---------------------------------------------------------------------------------------
    def replay(self, customer_id: str, payloads: Payloads | None = None, restore: Restore | None = None
               ) -> ReplayReport:
        """Replay one customer inside the caller's transaction (the caller commits)."""
        return self.replay_many([customer_id], payloads, restore)[0]

    def replay_many(self, customer_ids: list[str], payloads: Payloads | None = None,
                    restore: Restore | None = None, restatement: str | None = None) -> list[ReplayReport]:
        """Replay several customers with one round trip per step rather than per customer (the caller commits).

        `payloads`: event payloads read beforehand (`ReadAhead`); whatever else the replay needs, it reads.
        `restore`: replay even with nothing unsettled, and write the missing rows it names.
        `restatement`: replay even with nothing unsettled, and correct every row that differs, caused by it.
        """
        customer_ids = sorted(set(customer_ids))  # one lock order everywhere: no deadlock between batches
        self.restore, self.restatement = restore, restatement
        # The batch's payloads are freed when `_replay_batch` returns, before the collector runs again.
        with paused_cycle_collection():
            return self._replay_batch(customer_ids, payloads)

    def _replay_batch(self, customer_ids: list[str], payloads: Payloads | None) -> list[ReplayReport]:
        lock_customers(self.session, customer_ids)
        events = customer_events(self.session, customer_ids, payloads)
        self._preload_links(customer_ids, events)
        batch = Batch(self.settings.platform_currency)
        reports = []
        # New subscription rows are flushed once, by the batch's write, rather than before each lookup.
        with self.session.no_autoflush:
            for customer_id in customer_ids:
                reports.append(self._replay_one(customer_id, events.get(customer_id, []), batch))
        self._write(batch)
        return reports

    def _write(self, batch: Batch) -> None:
        existing = effective_rows_of(self.session, [work.subscription.id for work in batch.works])
        for work in batch.works:
            self.write_rows(work, existing.get(work.subscription.id, {}), batch)
        batch.write(self.session)
        for work in batch.works:
            # Drift from the moment it happens (DESIGN §5): an Unclassified row raises the flag as it is written.
            if work.report.notes or work.subscription.drift_discrepancies:
                drift.refresh_durable(self.session, work.subscription, self.settings.platform_currency)

    def _replay_one(self, customer_id: str, rows: list[Any], batch: Batch) -> ReplayReport:
        report = ReplayReport(customer_id)
        unsettled = [row for row in rows if row.status in UNSETTLED]
        if not unsettled and self.restore is None and self.restatement is None:
            report.reason = "nothing to replay"
            return report
        subscription, reason = self.link(customer_id, rows)
        if subscription is None:
            report.reason = reason
            report.ignored = batch.set_status(unsettled, "ignored", reason)
            return report
        report.tenant_id = subscription.tenant_id
        try:
            replayed = self.rules.replay(as_archived(rows), baselines=self.baselines(subscription))
            payments = fold_payments(replayed.ordered, self.catalog, self.charge_invoice)
            amounts = self.amounts(replayed)
        except MissingKnowledge as missing:
            # Never a row on missing knowledge (DESIGN §4.6): the events stay pending; the sweeper tries again.
            log.warning("customer %s waits: %s is neither known nor fetchable", customer_id, missing)
            report.reason, report.waiting = f"waiting for {missing}", True
            drift.waiting_on(subscription, str(missing))
            return report
        report.notes = replayed.notes
        new_ids = {row.id for row in unsettled} - set(replayed.skipped)
        batch.works.append(Work(subscription, replayed, new_ids, report, self.restore, self.restatement))
        self.collect_payments(subscription, payments, report, batch)
        self.project(subscription, replayed, amounts,
                     ever_paid=any(p.status in ("succeeded", "refunded") for p in payments))
        processed = [r for r in unsettled if r.id not in replayed.skipped]
        report.processed = batch.set_status(processed, "processed", None, tenant_id=subscription.tenant_id)
        for row in unsettled:
            if row.id in replayed.skipped:
                report.ignored += batch.set_status([row], "ignored", replayed.skipped[row.id],
                                                   tenant_id=subscription.tenant_id)
        return report

    def baselines(self, subscription: Subscription) -> list[LedgerRow]:
        """The subscription's LedgerBaseline rows (never corrected), with the one a disaster recovery brings."""
        found: dict[str, LedgerRow] = {}
        if subscription.history_complete_from is not None:
            found = {row.stripe_event_id: row for row in stored_baselines(self.session, subscription.id)}
        if self.restore is not None and self.restore.baseline is not None:
            found.setdefault(self.restore.baseline.stripe_event_id, self.restore.baseline)
        return list(found.values())

    def _preload_links(self, customer_ids: list[str], events: dict[str, list[Any]]) -> None:
        """Load the batch's subscriptions, named tenants and those tenants' subscriptions at once, for `link`."""
        self._subscriptions = {s.stripe_customer_id: s for s in self.session.scalars(
            select(Subscription).where(Subscription.stripe_customer_id.in_(customer_ids)))}
        named = {self._tenant_in_archive(c, events.get(c, [])) for c in customer_ids if c not in self._subscriptions}
        named.discard(None)
        self._tenants = {t.id: t for t in self.session.scalars(select(Tenant).where(Tenant.id.in_(
            named | {s.tenant_id for s in self._subscriptions.values()})))}
        # Locked as `link` would lock each: two customers naming one tenant must not both take its row.
        self._by_tenant: dict[str, Subscription | None] = dict.fromkeys(named)
        if named:
            self._by_tenant.update((s.tenant_id, s) for s in self.session.scalars(
                select(Subscription).where(Subscription.tenant_id.in_(named)).with_for_update()))

    def link(self, customer_id: str, rows: list[Any]) -> tuple[Subscription | None, str | None]:
        """Find or make the customer's subscription row (DESIGN §4.3); None with the reason when it cannot."""
        subscription = self._subscriptions.get(customer_id)
        if subscription is not None:
            return subscription, None
        tenant_id = self._tenant_in_archive(customer_id, rows) or self._tenant_from_stripe(customer_id)
        if tenant_id is None:
            return None, f"{UNKNOWN_TENANT}: customer {customer_id} names no tenant (metadata.tenant_id)"
        tenant = self._tenants.get(tenant_id) or self.session.get(Tenant, tenant_id)
        if tenant is None:
            return None, f"{UNKNOWN_TENANT}: customer {customer_id} names tenant {tenant_id}, which does not exist"
        self._tenants[tenant_id] = tenant
        first_event = min(row.stripe_created_at for row in rows)
        if tenant.deleted_at is not None and first_event >= tenant.deleted_at:
            # Billing that began before the deletion is history and is kept; a new customer of a deleted
            # tenant is not linked.
            return None, f"{UNKNOWN_TENANT}: customer {customer_id} names tenant {tenant_id}, deleted before it began"
        if tenant_id in self._by_tenant:
            subscription = self._by_tenant[tenant_id]
        else:
            subscription = self.session.scalars(
                select(Subscription).where(Subscription.tenant_id == tenant_id).with_for_update()).one_or_none()
        if subscription is not None and subscription.stripe_customer_id not in (None, customer_id):
            return None, (f"{DUPLICATE_CUSTOMER}: tenant {tenant_id} already has customer "
                          f"{subscription.stripe_customer_id}; {customer_id} also names it")
        if subscription is None:
            subscription = Subscription(id=new_id("sbs"), tenant_id=tenant_id, forward_mrr=ZERO,
                                        account_status="free", cancel_at_period_end=False, drift_discrepancies=[])
            self.session.add(subscription)
        subscription.stripe_customer_id = customer_id
        self._subscriptions[customer_id] = subscription
        self._by_tenant[tenant_id] = subscription
        return subscription, None

    @staticmethod
    def _tenant_in_archive(customer_id: str, rows: list[Any]) -> str | None:
        for row in sorted(rows, key=lambda r: r.stripe_created_at, reverse=True):
            obj = (row.payload.get("data") or {}).get("object") or {}
            if obj.get("object") == "customer" and obj.get("id") == customer_id:
                tenant_id = (obj.get("metadata") or {}).get("tenant_id")
                if tenant_id:
                    return str(tenant_id)
        return None

    def _tenant_from_stripe(self, customer_id: str) -> str | None:
        if self.gateway is None:
            return None
        from backoffice.stripe_gateway import StripeGatewayError

        try:
            return self.gateway.customer(customer_id).tenant_id
        except StripeGatewayError as error:
            log.warning("customer %s could not be fetched to link it: %s", customer_id, error)
            return None

    # --- writing --------------------------------------------------------------------------------------
    def write_rows(self, work: Work, existing: dict[str, Any], batch: Batch) -> None:
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
                batch.inserts.append(self._ledger_row(subscription, row))
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

    def _ledger_row(self, subscription: Subscription, row: LedgerRow) -> dict[str, Any]:
        return {"id": new_id("bev"), "tenant_id": subscription.tenant_id, "subscription_id": subscription.id,
                "stripe_event_id": row.stripe_event_id, "currency": row.currency, "occurred_at": row.occurred_at,
                "position": row.position, "cancellation_reason": row.cancellation_reason,
                "suspension_reason": row.suspension_reason, **row.values()}

    def amounts(self, replayed: Replayed) -> SubscriptionAmounts | None:
        """The customer's latest subscription state, priced (None: the customer has no readable event)."""
        state = replayed.state
        if state is None or state.resolver is None or not state.subscription:
            return None
        return self.pricing.subscription(state.subscription, state.schedule, state.resolver, state.lookup,
                                         state.tax_rate)

    def project(self, subscription: Subscription, replayed: Replayed, amounts: SubscriptionAmounts | None,
                ever_paid: bool) -> None:
        """Bring the subscription row to the customer's latest state (the fields the ledger knows)."""
        state = replayed.state
        if state is None or state.resolver is None:
            return
        resolver = state.resolver
        stripe_subscription = state.subscription
        now = datetime.now(UTC)
        subscription.modified_at = now
        if stripe_subscription and amounts is not None:
            subscription.stripe_subscription_id = stripe_subscription.get("id")
            subscription.status = stripe_subscription.get("status")
            subscription.plan = amounts.plan
            subscription.current_price_amount = amounts.current
            subscription.current_price_currency = resolver.subscription_currency(stripe_subscription)
            subscription.scheduled_plan = amounts.scheduled_plan
            subscription.scheduled_price_amount = amounts.scheduled
            period_end = resolver.period_end(stripe_subscription)
            subscription.current_period_end = datetime.fromtimestamp(period_end, UTC) if period_end else None
            subscription.cancel_at_period_end = bool(stripe_subscription.get("cancel_at_period_end"))
            subscription.forward_mrr = amounts.forward
        customer = state.objects.get(state.customer_id) if state.customer_id else None
        if customer is not None:
            subscription.payment_method = projection.payment_method(customer, state.objects)
            subscription.billing_info = projection.billing_info(customer, state.objects)
        subscription.first_payment_failed_at = projection.first_payment_failed_at(replayed.ordered)
        subscription.cancellation_reason = projection.cancellation_reason(stripe_subscription)
        # A baseline with MRR stands for a creation the archive lacks (DESIGN §4.11).
        created = [row.occurred_at for row in replayed.rows if row.event_type == "SubscriptionCreated"
                   or (row.event_type == BASELINE and row.committed_mrr > 0)]
        if created:
            earliest = min(created)
            # Moves only backward (the seed's rule): a late, older Created can only make it earlier.
            if subscription.subscribed_since is None or earliest < subscription.subscribed_since:
                subscription.subscribed_since = earliest
        subscription.account_status = account_status(subscription, ever_paid)
        tenant = self.session.get(Tenant, subscription.tenant_id)
        if tenant is not None:
            tenant.plan = subscription.plan or FREE_PLAN
            last = next((row for row in reversed(replayed.rows) if row.event_type != "NoOp"), None)
            if last is not None and last.event_type == "SubscriptionSuspended":
                tenant.state, tenant.suspension_reason = "suspended", last.suspension_reason
            elif subscription.plan:
                tenant.state, tenant.suspension_reason = "active", None

    @staticmethod
    def collect_payments(subscription: Subscription, payments: list[Payment], report: ReplayReport,
                         batch: Batch) -> None:
        """The customer's payment transactions, recomputed from its events (DESIGN §4.10), for the batch's upsert."""
        now = datetime.now(UTC)
        for payment in payments:
            if payment.clamped:
                report.notes.append(Note(AMOUNT_CLAMPED, payment.id, "tax exceeds the invoice total"))
            batch.payments.append({"subscription_id": subscription.id, "tenant_id": subscription.tenant_id,
                                   "modified_at": now, **payment.values()})


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
        self.statuses: list[dict[str, Any]] = []
        self.rollup = Rollup(platform_currency)

    def set_status(self, rows: list[Any], status: str, error: str | None, tenant_id: str | None = None) -> int:
        """Move rows on; one set aside again keeps its status (§4.7 has no failed → ignored), with the new reason."""
        by_target: dict[str, list[str]] = {}
        for row in rows:
            target = row.status if status == "ignored" and row.status in ("ignored", "failed") else status
            if not (target == row.status == "ignored"):
                by_target.setdefault(target, []).append(row.id)
        for target, ids in by_target.items():
            self.statuses.append({"s_ids": ids, "s_status": target, "s_error": error, "s_tenant": tenant_id})
        return sum(len(ids) for ids in by_target.values())

    def write(self, session: Session) -> None:
        session.flush()  # new subscription rows first: the ledger and payments refer to them
        connection = session.connection()
        if self.inserts:
            connection.execute(LEDGER_INSERT, as_columns(self.inserts))
        if self.corrections:
            connection.execute(CORRECTION_INSERT, as_columns(self.corrections))
        if self.payments:
            # One statement may change a row once only: an invoice seen twice keeps its last values, as before.
            connection.execute(PAYMENT_UPSERT, as_columns(list({row["id"]: row for row in self.payments}.values())))
        self.rollup.write(session)
        if self.statuses:
            # Tenant linked in the same statement (set once, from null): each UPDATE runs the archive's guard.
            connection.execute(
                update(EVENTS).where(EVENTS.c.id == any_(bindparam("s_ids", type_=ARRAY(Text))))
                .values(status=bindparam("s_status"), processed_at=func.now(), error=bindparam("s_error"),
                        tenant_id=func.coalesce(EVENTS.c.tenant_id, bindparam("s_tenant"))),
                self.statuses)


def account_status(subscription: Subscription, ever_paid: bool) -> str:
    """Reference §6's derivation, in its priority order."""
    if subscription.cancel_at_period_end and subscription.plan:
        return "canceling"
    if subscription.scheduled_plan:
        return "downgrading"
    if subscription.plan and subscription.plan != FREE_PLAN:
        return "active"
    return "canceled" if ever_paid else "free"


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
        changes = [(key, total, count) for key, (total, count) in self.changes.items() if total or count]
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

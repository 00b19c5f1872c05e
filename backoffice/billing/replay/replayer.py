"""The replay's orchestrator (DESIGN §2.2): a batch of customers under their locks, in one transaction, from the
archive through the rules to the writer, the projection and the drift the local facts decide."""
from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from backoffice.billing.ledger.payments import AMOUNT_CLAMPED, Payment, fold_payments
from backoffice.billing.ledger.pricing import MissingKnowledge, SubscriptionAmounts
from backoffice.billing.ledger.rulebook import ReplaySettings, load_rules
from backoffice.billing.ledger.rules import LedgerRow, Note, Replayed
from backoffice.billing.models import Subscription
from backoffice.billing.reconcile import drift
from backoffice.billing.replay.archive import (
    UNSETTLED,
    Payloads,
    as_archived,
    customer_events,
    effective_rows_of,
    lock_customers,
    plan_for_keyed_reads,
    stored_baselines,
)
from backoffice.billing.replay.linking import Links
from backoffice.billing.replay.projection import project
from backoffice.billing.replay.read_ahead import paused_cycle_collection
from backoffice.billing.replay.requests import Intent, ReplayReport, Restore
from backoffice.billing.replay.writer import Batch, Work, write_rows

log = logging.getLogger(__name__)


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
        # The batch's payloads are freed when `_replay_batch` returns, before the collector runs again.
        with paused_cycle_collection():
            return self._replay_batch(customer_ids, payloads, Intent(restore, restatement))

    def _replay_batch(self, customer_ids: list[str], payloads: Payloads | None, intent: Intent
                      ) -> list[ReplayReport]:
        plan_for_keyed_reads(self.session)
        lock_customers(self.session, customer_ids)
        events = customer_events(self.session, customer_ids, payloads)
        links = Links(self.session, self.gateway, customer_ids, events)
        batch = Batch(self.settings.platform_currency)
        reports = []
        # New subscription rows are flushed once, by the batch's write, rather than before each lookup.
        with self.session.no_autoflush:
            for customer_id in customer_ids:
                reports.append(self._replay_one(customer_id, events.get(customer_id, []), batch, links, intent))
        self._write(batch)
        return reports

    def _write(self, batch: Batch) -> None:
        existing = effective_rows_of(self.session, [work.subscription.id for work in batch.works])
        for work in batch.works:
            write_rows(work, existing.get(work.subscription.id, {}), batch)
        batch.write(self.session)
        for work in batch.works:
            # Drift from the moment it happens (DESIGN §5): an Unclassified row raises the flag as it is written.
            if work.report.notes or work.subscription.drift_discrepancies:
                drift.refresh_durable(self.session, work.subscription)

    def _replay_one(self, customer_id: str, rows: list[Any], batch: Batch, links: Links, intent: Intent
                    ) -> ReplayReport:
        report = ReplayReport(customer_id)
        unsettled = [row for row in rows if row.status in UNSETTLED]
        if not unsettled and not intent.replays_settled:
            report.reason = "nothing to replay"
            return report
        subscription, reason = links.link(customer_id, rows)
        if subscription is None:
            report.reason = reason
            report.ignored = batch.set_status(unsettled, "ignored", reason)
            return report
        report.tenant_id = subscription.tenant_id
        try:
            replayed = self.rules.replay(as_archived(rows), baselines=self.baselines(subscription, intent.restore))
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
        batch.works.append(Work(subscription, replayed, new_ids, report, intent.restore, intent.restatement))
        self.collect_payments(subscription, payments, report, batch)
        project(self.session, subscription, replayed, amounts,
                ever_paid=any(p.status in ("succeeded", "refunded") for p in payments), free=self.rules.free_plan)
        processed = [r for r in unsettled if r.id not in replayed.skipped]
        report.processed = batch.set_status(processed, "processed", None, tenant_id=subscription.tenant_id)
        for row in unsettled:
            if row.id in replayed.skipped:
                report.ignored += batch.set_status([row], "ignored", replayed.skipped[row.id],
                                                   tenant_id=subscription.tenant_id)
        return report

    def baselines(self, subscription: Subscription, restore: Restore | None) -> list[LedgerRow]:
        """The subscription's LedgerBaseline rows (never corrected), with the one a disaster recovery brings."""
        found: dict[str, LedgerRow] = {}
        if subscription.history_complete_from is not None:
            found = {row.stripe_event_id: row for row in stored_baselines(self.session, subscription.id)}
        if restore is not None and restore.baseline is not None:
            found.setdefault(restore.baseline.stripe_event_id, restore.baseline)
        return list(found.values())

    def amounts(self, replayed: Replayed) -> SubscriptionAmounts | None:
        """The customer's latest subscription state, priced (None: the customer has no readable event)."""
        state = replayed.state
        if state is None or state.resolver is None or not state.subscription:
            return None
        return self.pricing.subscription(state.subscription, state.schedule, state.resolver, state.lookup,
                                         state.tax_rate)

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

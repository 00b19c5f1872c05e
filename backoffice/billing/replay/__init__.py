"""The replay: a customer's archive turned into ledger rows, corrections, rollups and the projection (DESIGN §2.2).

The only writer of `billing_events`. It runs per Stripe customer under a PostgreSQL advisory lock, in one
transaction, and recomputes the customer's rows from its whole archive in the §4.4 order: new events get
rows, rows whose values the late events changed get corrections (§4.6), and the archive rows move on
through their status machine (§4.7). Plain Python over a SQLAlchemy session; the job and the CLI wrap it.

- `archive`: what a replay reads, and the customer's lock;
- `read_ahead`: payloads read one batch ahead, and the collector held off;
- `linking`: customer → tenant → subscription row (§4.3);
- `writer`: the batch's rows, corrections, payments, rollup and statuses, each one statement;
- `projection`: the subscription row brought to the customer's latest state;
- `replayer`: the orchestrator.
"""
from backoffice.billing.ledger.rulebook import ReplaySettings
from backoffice.billing.replay.archive import (
    Payloads,
    as_archived,
    customer_events,
    effective_rows_of,
    read_payloads,
    stored_baselines,
)
from backoffice.billing.replay.projection import account_status
from backoffice.billing.replay.read_ahead import CollectedEvery, ReadAhead
from backoffice.billing.replay.replayer import Replayer, ReplayReport, Restore

__all__ = ["CollectedEvery", "Payloads", "ReadAhead", "ReplayReport", "ReplaySettings", "Replayer", "Restore", "account_status",
           "as_archived", "customer_events", "effective_rows_of", "read_payloads", "stored_baselines"]

"""What a replay is asked beyond settling new events, and what it reports having done."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from backoffice.billing.ledger.rules import LedgerRow, Note


@dataclass(frozen=True)
class Restore:
    """A replay that also writes the rows of already processed events that have none (DESIGN §4.11): those
    after `after` (a Sync: Stripe's 30-day window; a disaster recovery: its cutoff), with `baseline` first."""

    after: datetime
    baseline: LedgerRow | None = None


@dataclass(frozen=True)
class Intent:
    """What one call asks beyond settling new events: a restore (DESIGN §4.11) or a restatement (§4.6)."""

    restore: Restore | None = None
    restatement: str | None = None  # `restatement:<audit id>`

    @property
    def replays_settled(self) -> bool:
        """Whether customers with nothing unsettled are replayed too."""
        return self.restore is not None or self.restatement is not None


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

"""The billing events page's lenses (reference §6) and the partial indexes of `ledger_index` that serve them, in the
literal SQL the queries and the indexes (migration 0008) share."""
from __future__ import annotations

from backoffice.billing.ledger.vocabulary import MRR_TYPES, OTHER_TYPES, STATE_TYPES, EventType

# The pills of the billing events page (reference §6): independent lenses, an event can match several. Ours add
# Suspended and LedgerBaseline to MRR impact: both move MRR.
LENSES: dict[str, frozenset[str]] = {"mrr": MRR_TYPES, "state": STATE_TYPES, "other": OTHER_TYPES}


def lens_predicate(lens: str) -> str:
    """A lens as SQL over ledger_index: the query and the lens's partial index (migration 0008) say it alike,
    with literal values, so that PostgreSQL proves the one implies the other under any plan."""
    return "event_type IN (" + ", ".join(f"'{kind}'" for kind in sorted(map(str, LENSES[lens]))) + ")"


def partial_indexes() -> dict[str, str]:
    """ledger_index's partial indexes beyond the newest-first one (migration 0008): one per lens, one for movements."""
    return {**{f"ix_ledger_index_lens_{lens}": lens_predicate(lens) for lens in LENSES},
            "ix_ledger_index_movement": f"movement IS NOT NULL AND event_type <> '{EventType.NO_OP}'"}

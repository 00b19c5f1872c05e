"""The read models (docs/read-models.md): the tables derived from others, each described in a module of its own.

`REGISTRY` lists them in the order they may be rebuilt: a read model derived from another comes after it
(invoice_totals after invoice_rows). `repair` checks and rebuilds any of them; `commands` adds the
`flask db check-read-models` and `flask db rebuild-read-models` commands.
"""
from __future__ import annotations

from backoffice.read_models import (
    account_index,
    account_month_totals,
    account_months,
    invoice_rows,
    invoice_totals,
    ledger_index,
    ledger_tips,
    login_daily,
    mrr_daily,
    revenue_daily,
    user_seen_daily,
)
from backoffice.read_models.model import ReadModel

REGISTRY: tuple[ReadModel, ...] = (
    account_index.MODEL,
    ledger_index.MODEL,
    ledger_tips.MODEL,
    mrr_daily.MODEL,
    account_months.MODEL,
    account_month_totals.MODEL,
    invoice_rows.MODEL,
    invoice_totals.MODEL,
    revenue_daily.MODEL,
    user_seen_daily.MODEL,
    login_daily.MODEL,
)
NAMES = tuple(model.name for model in REGISTRY)


def select_models(names: tuple[str, ...] = ()) -> tuple[ReadModel, ...]:
    """The named read models in registry order (all of them when none is named)."""
    unknown = set(names) - set(NAMES)
    if unknown:
        raise KeyError(f"unknown read model(s) {', '.join(sorted(unknown))}; known: {', '.join(NAMES)}")
    return tuple(model for model in REGISTRY if not names or model.name in names)

"""What a read model is (docs/read-models.md): a derived table, the sources it follows, who writes and reads it,
the SQL that keeps it, and the query that recomputes it from its sources."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, Table


@dataclass(frozen=True)
class ReadModel:
    """One derived table and everything needed to check it against its sources and to rebuild it."""

    table: Table
    # Columns that identify a row: the table's primary key.
    key: tuple[str, ...]
    # The tables it derives from (views are named by the tables behind them).
    sources: tuple[str, ...]
    # Who writes it, in words: the triggers below, or the Python that does.
    writer: str
    # The modules (and through them the pages) that read it.
    readers: tuple[str, ...]
    # The rows the table should hold, from the sources; the platform currency stands in for a ledger row's
    # missing currency (mrr_daily). Columns are labelled as the table's.
    recompute: Callable[[str], Select]
    # The functions and triggers as the newest migration leaves them, in an order that can be run: each
    # statement is idempotent (CREATE OR REPLACE), and the functions' bodies are copied literally by migrations.
    sql: tuple[str, ...] = ()
    # The functions (as regprocedure: `name(argument types)`) and the triggers (table, name) `sql` creates.
    functions: tuple[str, ...] = ()
    triggers: tuple[tuple[str, str], ...] = ()
    # Column values of a row that stands for no row at all: the running sums written by adding deltas keep a
    # zero where everything was taken back, and a recomputation has no row there.
    empty: Mapping[str, Any] = field(default_factory=dict)
    # What the table holds, when that is not its rows as they are: a table of appended changes holds their sums
    # per key (account_month_totals). Columns are labelled as the table's.
    stored: Callable[[], Select] | None = None

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def values(self) -> tuple[str, ...]:
        """The columns besides the key: those a row can differ in."""
        return tuple(column.name for column in self.table.columns if column.name not in self.key)

"""A read model against its recomputation: the rows that differ, and a rebuild that changes exactly those.

One query compares the stored table with the recomputation (a full join on the key), so a check reads both
in one snapshot; the triggers and the replay write a read model in the same transaction as its sources, so
what one snapshot shows differing really differs. A rebuild locks the table first (SHARE ROW EXCLUSIVE: a
writer of the table waits, readers do not), so that no source change can slip between the comparison and
the repair: every writer of a source writes the read model in the same transaction, and that write waits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Subquery, and_, delete, exists, false, func, insert, not_, or_, select, text, tuple_
from sqlalchemy.orm import Session

from backoffice.read_models.model import ReadModel


@dataclass(frozen=True)
class Difference:
    """A row of a read model that is not what its sources say: missing, extra, or differing in some columns."""

    model: str
    key: tuple[Any, ...]
    stored: dict[str, Any] | None
    recomputed: dict[str, Any] | None

    @property
    def kind(self) -> str:
        if self.stored is None:
            return "missing"
        return "extra" if self.recomputed is None else "differs"

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns that differ (every column of a missing or extra row)."""
        if self.stored is None or self.recomputed is None:
            return tuple(self.stored or self.recomputed or ())
        return tuple(name for name in self.stored if self.stored[name] != self.recomputed[name])

    def __str__(self) -> str:
        key = "/".join(str(part) for part in self.key)
        if self.stored is None or self.recomputed is None:
            row = self.stored or self.recomputed or {}
            return f"{self.model} {key}: {self.kind}: " + ", ".join(f"{name} {row[name]}" for name in row)
        return f"{self.model} {key}: differs: " + "; ".join(
            f"{name} stored {self.stored[name]}, recomputed {self.recomputed[name]}" for name in self.columns)


def differences(session: Session, model: ReadModel, platform_currency: str) -> list[Difference]:
    """Every row where the table and its recomputation disagree, in key order."""
    have, want = _stored(model), _recomputed(model, platform_currency)
    rows = session.execute(
        select(*(have.c[name].label(f"have_{name}") for name in model.table.columns.keys()),
               *(want.c[name].label(f"want_{name}") for name in model.table.columns.keys()))
        .select_from(_compared(model, have, want))
        .where(_differs(model, have, want))
        .order_by(*(func.coalesce(have.c[name], want.c[name]) for name in model.key))).mappings().all()
    return [_difference(model, row) for row in rows]


def rebuild(session: Session, model: ReadModel, platform_currency: str) -> list[Difference]:
    """Make the table equal its recomputation, rewriting only the rows that differ; return them.

    One transaction (the caller commits): the lock, the comparison, the delete of the stale rows and the insert
    of the recomputed ones.
    """
    session.execute(text(f"LOCK TABLE {model.name} IN SHARE ROW EXCLUSIVE MODE"))
    found = differences(session, model, platform_currency)
    if not found:
        return found
    table = model.table
    key = tuple_(*(table.c[name] for name in model.key))
    have, want = _stored(model), _recomputed(model, platform_currency)
    # By the key on either side: a row standing for nothing (see ReadModel.empty) is replaced too.
    stale = select(*(func.coalesce(have.c[name], want.c[name]) for name in model.key)) \
        .select_from(_compared(model, have, want)).where(_differs(model, have, want))
    session.execute(delete(table).where(key.in_(stale)))
    fresh = _recomputed(model, platform_currency)
    kept = exists().where(*(table.c[name] == fresh.c[name] for name in model.key))
    columns = list(table.columns.keys())
    session.execute(insert(table).from_select(columns, select(*(fresh.c[name] for name in columns)).where(~kept)))
    return found


def _stored(model: ReadModel) -> Subquery:
    held = model.stored().subquery("held") if model.stored is not None else model.table
    return select(*held.c).where(not_(_empty(model, held.c))).subquery("have")


def _recomputed(model: ReadModel, platform_currency: str) -> Subquery:
    want = model.recompute(platform_currency).subquery("recomputed")
    return select(*want.c).where(not_(_empty(model, want.c))).subquery("want")


def _empty(model: ReadModel, columns: Any) -> Any:
    if not model.empty:
        return false()
    return and_(*(columns[name] == value for name, value in model.empty.items()))


def _compared(model: ReadModel, have: Subquery, want: Subquery) -> Any:
    on = and_(*(have.c[name] == want.c[name] for name in model.key))
    return have.join(want, on, full=True)


def _differs(model: ReadModel, have: Subquery, want: Subquery) -> Any:
    first = model.key[0]  # key columns are never null, so a null one is a row missing on that side
    return or_(have.c[first].is_(None), want.c[first].is_(None),
               *(have.c[name].is_distinct_from(want.c[name]) for name in model.values))


def _difference(model: ReadModel, row: Any) -> Difference:
    def side(prefix: str) -> dict[str, Any] | None:
        if row[f"{prefix}_{model.key[0]}"] is None:
            return None
        return {name: row[f"{prefix}_{name}"] for name in model.values}

    key = tuple(row[f"have_{name}"] if row[f"have_{name}"] is not None else row[f"want_{name}"]
                for name in model.key)
    return Difference(model.name, key, side("have"), side("want"))

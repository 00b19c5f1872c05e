"""Pages of a sorted query: counted offset pages for people, keyset cursors for deep pages and exports.

Every list sorts by a tuple of keys that ends in a unique column, so that a row's key values name its place
exactly. A cursor is the key values of the last row seen, encoded as an opaque URL-safe string; the next
page is the rows after it in the same order, found through a comparison the database can use an index for.
"""
from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, and_, false, func, or_, select, true
from sqlalchemy.orm import Session

RowT = TypeVar("RowT")


class PageOutOfRange(ValueError):
    """A page past the last one was asked for; the message says which pages exist."""

    def __init__(self, page: int, pages: int):
        super().__init__(f"page {page} is past the last page ({pages})")
        self.page, self.pages = page, pages


class BadCursor(ValueError):
    """An `after` cursor that this list did not make."""


@dataclass(frozen=True)
class SortKey:
    """One part of a sort order: an expression and its direction."""

    expression: ColumnElement[Any]
    descending: bool = False


def nulls_last(expression: ColumnElement[Any], descending: bool) -> list[SortKey]:
    """Sort by a nullable expression with the empty values last in both directions."""
    return [SortKey(expression.is_(None)), SortKey(expression, descending)]


@dataclass(frozen=True)
class Page(Generic[RowT]):
    """One page of rows, with the total of the filtered rows and the cursor after the last one."""

    rows: list[RowT]
    total: int
    page: int
    per_page: int
    next_cursor: str | None
    # The count stopped at a cap: there are more than `total` rows (a very long list is not counted to its end).
    capped: bool = False

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))

    @property
    def first_index(self) -> int:
        return (self.page - 1) * self.per_page + 1 if self.rows else 0

    @property
    def last_index(self) -> int:
        return self.first_index + len(self.rows) - 1 if self.rows else 0


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, date):
        return {"d": value.isoformat()}
    if isinstance(value, Decimal):
        return {"n": str(value)}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        (tag, text), = value.items()
        decoders: dict[str, Callable[[str], Any]] = {"t": datetime.fromisoformat, "d": date.fromisoformat, "n": Decimal}
        if tag in decoders and isinstance(text, str):
            return decoders[tag](text)
    if value is None or isinstance(value, (str, int, bool)):
        return value
    raise BadCursor("unreadable cursor value")


def encode_cursor(values: Sequence[Any]) -> str:
    """Return the opaque cursor of a row's sort-key values."""
    text = json.dumps([_encode_value(value) for value in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[Any]:
    """Return the sort-key values of a cursor, or raise BadCursor."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != length:
            raise BadCursor("the cursor does not fit this list's sort order")
        return [_decode_value(value) for value in raw]
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise BadCursor(str(error)) from error


def after_condition(keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after the given key values in the keys' order (nulls equal to nulls)."""
    branches = []
    for index, key in enumerate(keys):
        value = values[index]
        equal_before = [keys[i].expression.is_not_distinct_from(values[i]) for i in range(index)]
        if value is None:
            continue  # nothing sorts strictly after NULL within the same prefix: nulls come last
        if isinstance(value, bool):
            strictly = key.expression.is_(False) if key.descending else key.expression.is_(True)
            if value is (not key.descending):
                continue  # no boolean sorts after the last one in this direction
        else:
            strictly = key.expression < value if key.descending else key.expression > value
        branches.append(and_(*equal_before, strictly))
    return or_(*branches) if branches else false()


def order_by(keys: Sequence[SortKey]) -> list[ColumnElement[Any]]:
    return [key.expression.desc() if key.descending else key.expression.asc() for key in keys]


def fetch_page(session: Session, query: Select, keys: Sequence[SortKey], *, page: int, per_page: int,
               after: str | None, to_row: Callable[[Any], RowT],
               hydrate: Callable[[list[Any]], list[Any]] | None = None, count_in_page: bool = False,
               count_cap: int | None = None) -> Page[RowT]:
    """Return one page of `query` in the keys' order: rows after the cursor, else the page's offset.

    The query's last selected columns must be the sort-key values (see `with_keys`). With `hydrate`, the
    query selects only what finds and orders the rows, and `hydrate` turns that page of narrow rows into
    full ones, in order: sorting narrow rows is what keeps a large list fast. `count_in_page` counts the
    matches in the page's own query (a window count), for lists that must read every match anyway to sort
    them (a search), which saves finding them twice. `count_cap` counts no further than that many rows past
    the page's start (a list of millions costs what its page costs; `capped` says there are more). A page past
    the last one raises PageOutOfRange; page 1 of an empty list is simply empty.
    """
    width = len(keys)
    ordered = query.order_by(*order_by(keys)).limit(per_page)
    if after:
        ordered = ordered.where(after_condition(keys, decode_cursor(after, width)))
    else:
        ordered = ordered.offset((page - 1) * per_page)
    total: int | None = None
    if count_in_page and not after:
        counted = session.execute(ordered.add_columns(func.count().over().label("_total"))).all()
        if counted:
            total, result = counted[0][-1], [tuple(row)[:-1] for row in counted]
        elif page == 1:
            total, result = 0, []
    capped = False
    if total is None:  # a separate count: also how a page past the end is told from an empty list
        counted = query.order_by(None)
        if count_cap is not None:
            limit = (page - 1) * per_page + count_cap
            counted = counted.limit(limit + 1)
        total = session.scalar(select(func.count()).select_from(counted.subquery()))
        if count_cap is not None and total > limit:
            total, capped = limit, True
        pages = max(1, -(-total // per_page))
        if page > pages:
            raise PageOutOfRange(page, pages)
        result = session.execute(ordered).all()
    next_cursor = encode_cursor(list(result[-1][-width:])) if result and len(result) == per_page else None
    rows = hydrate(result) if hydrate is not None and result else result
    return Page([to_row(row) for row in rows], total, page, per_page, next_cursor, capped)


def stream_rows(session: Session, query: Select, keys: Sequence[SortKey], *, to_row: Callable[[Any], RowT],
                chunk: int = 1000, hydrate: Callable[[list[Any]], list[Any]] | None = None) -> Iterator[RowT]:
    """Yield every row of `query` in the keys' order, a keyset chunk at a time (flat memory)."""
    condition: ColumnElement[bool] = true()
    width = len(keys)
    while True:
        result = session.execute(query.where(condition).order_by(*order_by(keys)).limit(chunk)).all()
        for row in (hydrate(result) if hydrate is not None and result else result):
            yield to_row(row)
        if len(result) < chunk:
            return
        condition = after_condition(keys, list(result[-1][-width:]))


def with_keys(query: Select, keys: Sequence[SortKey]) -> Select:
    """Add the sort-key values as the query's last columns, so pages can make cursors."""
    return query.add_columns(*(key.expression.label(f"_sort_{index}") for index, key in enumerate(keys)))

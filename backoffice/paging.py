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

from sqlalchemy import ColumnElement, Select, and_, false, func, literal, or_, select, true, tuple_
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType, TypeEngine

RowT = TypeVar("RowT")
# Lists that can hold millions of rows stop counting here (fetch_page's count_limit): "more than 10,000".
LONG_LIST_COUNT_CAP = 10_000
# A cursor holds a few key values; anything much longer is not one of ours, and is not worth parsing.
MAX_CURSOR_LENGTH = 2_000
BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1


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
    # The list has more rows than `total`, which is then the count's bound (see fetch_page's count_limit).
    total_capped: bool = False

    @property
    def pages(self) -> int:
        """The number of pages (with a capped total, of the pages counted so far)."""
        return max(1, -(-self.total // self.per_page))

    @property
    def has_next(self) -> bool:
        return self.page < self.pages or (self.total_capped and self.next_cursor is not None)

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


def decode_cursor(cursor: str, keys: Sequence[SortKey]) -> list[Any]:
    """Return the sort-key values of a cursor made for these keys, or raise BadCursor."""
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise BadCursor("the cursor is too long")
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(keys):
            raise BadCursor("the cursor does not fit this list's sort order")
        values = [_decode_value(value) for value in raw]
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise BadCursor(str(error)) from error
    for key, value in zip(keys, values, strict=True):
        if not _fits(value, key.expression.type):
            raise BadCursor(f"the cursor's {value!r} is no value of {key.expression}")
    return values


def _python_type(sql_type: TypeEngine[Any]) -> type:
    """The Python type of a key's values; `object` for an untyped expression (give it `type_=`)."""
    if isinstance(sql_type, NullType):
        return object
    try:
        return sql_type.python_type
    except NotImplementedError:
        return object


def _fits(value: Any, sql_type: TypeEngine[Any]) -> bool:
    """Whether the database can compare the key with `value`: a cursor is the client's text, and a value of
    another type (text against a timestamp) or one PostgreSQL cannot hold (a NUL in text) is an error there."""
    if value is None:
        return True  # keys may be nullable; after_condition treats NULL itself
    expected = _python_type(sql_type)
    if expected is bool or isinstance(value, bool):  # a bool is an int to Python, never to PostgreSQL
        return isinstance(value, bool) and expected in (bool, object)
    if expected is int:
        return isinstance(value, int) and BIGINT_MIN <= value <= BIGINT_MAX
    if expected is Decimal:
        return isinstance(value, Decimal) and value.is_finite()
    if expected is datetime:
        return isinstance(value, datetime)
    if expected is date:
        return isinstance(value, date) and not isinstance(value, datetime)
    if isinstance(value, str) and "\x00" in value:
        return False
    return expected is object or isinstance(value, expected)


def after_condition(keys: Sequence[SortKey], values: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after the given key values in the keys' order (nulls equal to nulls).

    When every key runs one way and no value is null or boolean, that is one row comparison, which an index on
    the keys seeks to (deep pages cost what the first does); otherwise a branch per key.
    """
    plain = all(value is not None and not isinstance(value, bool) for value in values)
    if plain and values and len({key.descending for key in keys}) == 1:
        row, bound = tuple_(*(key.expression for key in keys)), tuple_(*(literal(value) for value in values))
        return row < bound if keys[0].descending else row > bound
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
    if not branches:
        return false()
    # The same condition plus a plain bound on the first key, which an index can start its scan at: the OR of
    # branches alone makes PostgreSQL read the index from its beginning on every page.
    first, value = keys[0], values[0]
    if value is None or isinstance(value, bool):
        return or_(*branches)
    # PostgreSQL sorts NULL first in descending order and last in ascending order.
    bound = first.expression <= value if first.descending else or_(first.expression >= value,
                                                                  first.expression.is_(None))
    return and_(bound, or_(*branches))


def order_by(keys: Sequence[SortKey]) -> list[ColumnElement[Any]]:
    return [key.expression.desc() if key.descending else key.expression.asc() for key in keys]


def fetch_page(session: Session, query: Select, keys: Sequence[SortKey], *, page: int, per_page: int,
               after: str | None, to_row: Callable[[Any], RowT],
               hydrate: Callable[[list[Any]], list[Any]] | None = None, count_in_page: bool = False,
               count_limit: int | None = None, known_total: int | None = None) -> Page[RowT]:
    """Return one page of `query` in the keys' order: rows after the cursor, else the page's offset.

    The query's last selected columns must be the sort-key values (see `with_keys`). With `hydrate`, the
    query selects only what finds and orders the rows, and `hydrate` turns that page of narrow rows into
    full ones, in order: sorting narrow rows is what keeps a large list fast. `count_in_page` counts the
    matches in the page's own query (a window count), for lists that must read every match anyway to sort
    them (a search), which saves finding them twice. `count_limit` stops counting past that many rows (a
    list of a million rows is counted in the time of ten thousand): the page's total is then the limit,
    marked `total_capped`; `known_total` is a count the caller made already (a search), with the same
    limit. A page past the last one raises PageOutOfRange; page 1 of an empty list is simply empty. The
    cursor is set only when a row follows the page.
    """
    width = len(keys)
    ordered = query.order_by(*order_by(keys)).limit(per_page + 1)
    if after:
        ordered = ordered.where(after_condition(keys, decode_cursor(after, keys)))
    else:
        ordered = ordered.offset((page - 1) * per_page)
    total: int | None = None
    capped = False
    if count_in_page and not after and count_limit is None:
        counted = session.execute(ordered.add_columns(func.count().over().label("_total"))).all()
        if counted:
            total, result = counted[0][-1], [tuple(row)[:-1] for row in counted]
        elif page == 1:
            total, result = 0, []
    if total is None:  # a separate count: also how a page past the end is told from an empty list
        total = known_total if known_total is not None else _count(session, query, count_limit)
        capped = count_limit is not None and total > count_limit
        total = min(total, count_limit) if capped and count_limit is not None else total
        pages = max(1, -(-total // per_page))
        if page > pages and not capped:
            raise PageOutOfRange(page, pages)
        result = session.execute(ordered).all()
        if capped and not result and page > 1:
            raise PageOutOfRange(page, max(1, -(-_count(session, query, None) // per_page)))
    more, result = len(result) > per_page, result[:per_page]
    next_cursor = encode_cursor(list(result[-1][-width:])) if more else None
    rows = hydrate(result) if hydrate is not None and result else result
    return Page([to_row(row) for row in rows], total, page, per_page, next_cursor, capped)


def _count(session: Session, query: Select, limit: int | None) -> int:
    """The number of rows of `query`, or of at most limit + 1 of them."""
    counted = query.order_by(None)
    if limit is not None:
        counted = counted.limit(limit + 1)
    return session.scalar(select(func.count()).select_from(counted.subquery()))


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

"""CSV downloads that stream: rows are written as they are read, so memory stays flat at any size.

Views pass values, not strings: the cell's text is decided here, by type, so every list writes a time, a flag or
an amount the same way.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from flask import Response, stream_with_context

FLUSH_EVERY = 500
# Excel reads a CSV without a byte order mark as the machine's ANSI code page and garbles "Sønderjylland".
BOM = "\ufeff"
# A spreadsheet reads a cell starting with one of these as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def neutralise(value: Any) -> Any:
    """Quote a text cell a spreadsheet would run as a formula; numbers (our Decimal amounts) stay numbers.

    Decided by type, not by look: a tenant named `-5` is text and gets its quote, a refund of -49.00 does not.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def timestamp(moment: datetime) -> str:
    """An ISO 8601 UTC timestamp to the second, `2026-12-06T20:41:07Z`."""
    if moment.tzinfo is None:
        # A naive time has no zone to state; guessing one would write a wrong instant that looks right.
        raise ValueError(f"naive datetime {moment!r} in a CSV row")
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def cell(value: Any) -> Any:
    """The text of one cell, by the value's type."""
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: True is an int too
        return "true" if value else "false"
    if isinstance(value, datetime):  # before date: a datetime is a date too
        return timestamp(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        # Fixed point: str() would write Decimal("0E-2") as "0E-2", which a spreadsheet reads as text.
        return format(value, "f")
    if isinstance(value, Mapping | list | tuple):
        # Structured values (audit parameters) as JSON, which any tool reads back, never Python's repr; a text
        # inside starts with `{` or `[`, so the cell needs no neutralising.
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=_json_default)
    return neutralise(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, Decimal | date):
        return cell(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    """Stream `rows` under `header` as a CSV attachment named `filename`."""
    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        buffer.write(BOM)
        writer = csv.writer(buffer)
        writer.writerow(header)
        for count, row in enumerate(rows, 1):
            writer.writerow([cell(value) for value in row])
            if count % FLUSH_EVERY == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return Response(stream_with_context(lines()), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={filename}"})

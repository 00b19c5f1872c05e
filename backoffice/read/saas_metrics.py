"""The SaaS metrics operators buy ChartMogul or Baremetrics for, from `account_months` (docs/metrics.md).

Every figure is one of these, per calendar month (UTC), over the subscriptions billed in the reporting currency:
- MRR at a month's start and end, and the accounts paying (MRR > 0) then; ARR = 12 × MRR; ARPA = MRR ÷ paying.
- The month's movements (new, expansion, contraction, churn, reactivation, other); they sum to end − start.
- Logo churn rate = accounts paying at the start and not at the end ÷ accounts paying at the start.
- Gross MRR churn rate = −(churn + contraction) ÷ MRR at the start; net MRR churn rate =
  −(churn + contraction + expansion + reactivation) ÷ MRR at the start (negative: net expansion).
- NRR and GRR: of the accounts paying at the start of a span (a month, or twelve), their MRR at its end ÷ their
  MRR at its start; GRR counts no account above its starting MRR. New accounts never count.
- Cohorts: accounts by the month they first ended paying; each later month, how many still pay and their MRR.
- LTV = ARPA ÷ the gross MRR churn rate, averaged over the last three whole months; lifetime = 1 ÷ the logo
  churn rate averaged likewise. No churn in those months: no figure, said so.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from backoffice.accounts.models import Tenant
from backoffice.billing.models import AccountMonth, account_month_totals
from backoffice.fx import rates
from backoffice.paging import Page, SortKey, fetch_page, stream_rows, with_keys

MONTHS = AccountMonth.__table__
TOTALS = account_month_totals
TENANTS = Tenant.__table__
ZERO = Decimal("0.00")
MOVEMENTS = ("new", "expansion", "contraction", "churn", "reactivation", "other")
TOTAL_SUMS = ("mrr", "paying", *MOVEMENTS, "churned", "new_logos", "retained_change", "retained_loss")
# Not a ledger movement: what exchange rates alone moved in reporting-currency MRR (backoffice/fx).
FX = "fx"
PERIODS = (6, 12, 24)
AVERAGED_MONTHS = 3


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(month: date, count: int) -> date:
    index = month.year * 12 + month.month - 1 + count
    return date(index // 12, index % 12 + 1, 1)


def months_between(first: date, last: date) -> list[date]:
    months, month = [], month_start(first)
    while month <= last:
        months.append(month)
        month = add_months(month, 1)
    return months


def ratio(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    """part ÷ whole, None when the whole is nothing (a rate of an empty base is no figure, not 0 %)."""
    return None if not whole else Decimal(part) / Decimal(whole)


@dataclass(frozen=True)
class Month:
    """One calendar month's figures."""

    month: date
    mrr_start: Decimal
    mrr_end: Decimal
    paying_start: int
    paying_end: int
    movements: dict[str, Decimal]
    churned_logos: int
    new_logos: int
    # Of the accounts paying at the start: the change in their MRR, and its losses alone (for NRR and GRR).
    retained_change: Decimal
    retained_loss: Decimal

    @property
    def arr(self) -> Decimal:
        return self.mrr_end * 12

    @property
    def arpa(self) -> Decimal | None:
        return ratio(self.mrr_end, self.paying_end)

    @property
    def logo_churn_rate(self) -> Decimal | None:
        return ratio(self.churned_logos, self.paying_start)

    @property
    def gross_mrr_churn_rate(self) -> Decimal | None:
        return ratio(-(self.movements["churn"] + self.movements["contraction"]), self.mrr_start)

    @property
    def net_mrr_churn_rate(self) -> Decimal | None:
        lost = self.movements["churn"] + self.movements["contraction"]
        won = self.movements["expansion"] + self.movements["reactivation"]
        return ratio(-(lost + won), self.mrr_start)

    @property
    def nrr(self) -> Decimal | None:
        return ratio(self.mrr_start + self.retained_change, self.mrr_start)

    @property
    def grr(self) -> Decimal | None:
        return ratio(self.mrr_start + self.retained_loss, self.mrr_start)


@dataclass(frozen=True)
class Retention:
    """NRR and GRR over a span: the accounts paying at its start, their MRR then and at its end."""

    start: date  # the span starts at the end of the month before this one
    end: date  # … and ends at the end of this month
    accounts: int
    mrr_start: Decimal
    mrr_end: Decimal
    mrr_kept: Decimal  # Σ min(end, start) per account

    @property
    def nrr(self) -> Decimal | None:
        return ratio(self.mrr_end, self.mrr_start)

    @property
    def grr(self) -> Decimal | None:
        return ratio(self.mrr_kept, self.mrr_start)


@dataclass(frozen=True)
class CohortRow:
    cohort: date
    accounts: int  # paying at the end of the cohort's month
    mrr: Decimal
    # Months since the cohort month (0, 1, …) → (accounts paying, their MRR) at that month's end.
    cells: list[tuple[int, Decimal]] = field(default_factory=list)

    def logos(self, offset: int) -> Decimal | None:
        return ratio(self.cells[offset][0], self.accounts)

    def revenue(self, offset: int) -> Decimal | None:
        return ratio(self.cells[offset][1], self.mrr)


@dataclass(frozen=True)
class Metrics:
    currency: str
    months: list[Month]  # oldest first; the last is the current month, to date
    retention_12: Retention
    cohorts: list[CohortRow]

    @property
    def current(self) -> Month:
        return self.months[-1]

    @property
    def shown_movements(self) -> tuple[str, ...]:
        """The movement columns: the ledger's, and `fx` where another currency's rate moved MRR."""
        moved = any(month.movements[FX] for month in self.months)
        return ("new", "expansion", "contraction", "churn", "reactivation", *((FX,) if moved else ()))

    @property
    def averaged(self) -> list[Month]:
        """The last whole months the averages use (the current month is not whole yet)."""
        return self.months[-1 - AVERAGED_MONTHS:-1]

    def _average(self, name: str) -> Decimal | None:
        rates = [getattr(month, name) for month in self.averaged]
        rates = [rate for rate in rates if rate is not None]
        return sum(rates, Decimal(0)) / len(rates) if rates else None

    @property
    def average_gross_mrr_churn_rate(self) -> Decimal | None:
        return self._average("gross_mrr_churn_rate")

    @property
    def average_logo_churn_rate(self) -> Decimal | None:
        return self._average("logo_churn_rate")

    @property
    def ltv(self) -> Decimal | None:
        rate, arpa = self.average_gross_mrr_churn_rate, self.current.arpa
        return None if not rate or rate <= 0 or arpa is None else (arpa / rate).quantize(Decimal("0.01"))

    @property
    def lifetime_months(self) -> Decimal | None:
        rate = self.average_logo_churn_rate
        return None if not rate or rate <= 0 else (1 / rate).quantize(Decimal("0.1"))


def _active_at(month: date) -> Any:
    """The account's row that holds its MRR at the end of `month`: the one whose months [month, next_month) hold it.
    Written as the GiST index ix_account_months_active is (migration 0021), so that finding the rows of one month
    costs the accounts live then, not the history before."""
    return func.daterange(MONTHS.c.month, MONTHS.c.next_month).op("@>")(cast(literal(month), Date))


def month_end(month: date, today: date) -> date:
    """The day a month's figures are shown for: its last day, or today for the month under way."""
    return min(add_months(month, 1) - timedelta(days=1), today)


class _Converter:
    """Amounts in any billing currency into the reporting one at a day's rate (backoffice/fx), rates read once."""

    def __init__(self, session: Session, currency: str, currencies: Iterable[str], days: Iterable[date]):
        self.rate = rates.rates_for(session, sorted({currency, *currencies}), sorted(set(days)), currency)

    def __call__(self, amounts: dict[str, Decimal], day: date) -> Decimal:
        return sum((rates.convert(amount, self.rate[(billed, day)]) for billed, amount in amounts.items()), ZERO)


def monthly(session: Session, currency: str, months: list[date], today: date) -> list[Month]:
    """Each month's figures (months ascending and consecutive), from `account_month_totals`: a few rows per month
    of history, however many accounts (read_models/account_month_totals.py). What came before the first month is
    summed per billing currency; each currency's MRR and movements are converted at the rate of the month's end
    (`month_end`), and `fx` is what the rates alone moved, so that the movements still sum to the change."""
    first, last = months[0], months[-1]
    rows = session.execute(
        select(TOTALS.c.month, TOTALS.c.currency, *(func.sum(TOTALS.c[name]).label(name) for name in TOTAL_SUMS))
        .where(TOTALS.c.month <= last).group_by(TOTALS.c.month, TOTALS.c.currency)).all()
    running: dict[str, Decimal] = {}
    paying, by_month = 0, {}
    for row in rows:
        if row.month < first:
            running[row.currency] = running.get(row.currency, ZERO) + row.mrr
            paying += row.paying
        else:
            by_month.setdefault(row.month, []).append(row)
    days = [month_end(add_months(first, -1), today), *(month_end(month, today) for month in months)]
    convert = _Converter(session, currency, {row.currency for row in rows}, days)
    start = convert(running, days[0])
    result = []
    for month, day in zip(months, days[1:], strict=True):
        month_rows = by_month.get(month, [])
        for row in month_rows:
            running[row.currency] = running.get(row.currency, ZERO) + row.mrr
        end = convert(running, day)
        summed = {name: convert({row.currency: row._mapping[name] for row in month_rows}, day)
                  for name in (*MOVEMENTS, "retained_change", "retained_loss")}
        movements = {name: summed[name] for name in MOVEMENTS}
        movements[FX] = end - start - sum(movements.values(), ZERO)
        paying_end = paying + sum(row.paying for row in month_rows)
        result.append(Month(month, start, end, paying, paying_end, movements,
                            sum(row.churned for row in month_rows), sum(row.new_logos for row in month_rows),
                            summed["retained_change"], summed["retained_loss"]))
        start, paying = end, paying_end
    return result


def retention(session: Session, currency: str, start: date, end: date, today: date) -> Retention:
    """NRR and GRR from the end of the month before `start` to the end of `end`, at constant rates (both ends
    converted at the rate of the end's day, so that exchange rates move neither).

    An account that did not move in the span ends it as it started, so only the accounts that moved are read,
    once each: their MRR at the end (their last row's) and the change over the span, so their MRR before it. The
    rest is the paying accounts' MRR before the span (`account_month_totals`), less what the movers held then."""
    last_row = or_(MONTHS.c.next_month.is_(None), MONTHS.c.next_month > end)
    movers = (select(func.min(MONTHS.c.currency).label("currency"),
                     func.max(MONTHS.c.mrr_end).filter(last_row).label("now"),
                     func.sum(MONTHS.c.mrr_end - MONTHS.c.mrr_start).label("change"))
              .where(MONTHS.c.month.between(start, end)).group_by(MONTHS.c.subscription_id).subquery())
    then = movers.c.now - movers.c.change
    # Only those paying before count; one not paying at the end adds 0 (as Σ over the accounts paying then).
    later = func.greatest(movers.c.now, 0)
    moved = {row[0]: row[1:] for row in session.execute(
        select(movers.c.currency, func.sum(then), func.sum(later), func.sum(func.least(later, then)))
        .where(then > 0).group_by(movers.c.currency))}
    before = session.execute(
        select(TOTALS.c.currency, func.sum(TOTALS.c.paying_mrr), func.sum(TOTALS.c.paying))
        .where(TOTALS.c.month < start).group_by(TOTALS.c.currency)).all()
    started, ended, kept = {}, {}, {}
    for billed, paying_mrr, _ in before:
        held, now, least = moved.get(billed, (ZERO, ZERO, ZERO))
        unmoved = paying_mrr - held
        started[billed], ended[billed], kept[billed] = paying_mrr, unmoved + now, unmoved + least
    day = month_end(end, today)
    convert = _Converter(session, currency, started, [day])
    return Retention(start, end, sum(int(paying) for *_, paying in before), convert(started, day),
                     convert(ended, day), convert(kept, day))


def cohorts(session: Session, currency: str, months: list[date], today: date) -> list[CohortRow]:
    """The accounts of each cohort in `months`, and how many of them pay, with what MRR, at each later month's end
    (MRR at constant rates: the last month's). Each row is read once: a cohort's changes per month, summed on."""
    first, last = months[0], months[-1]
    paying_change = (case((MONTHS.c.mrr_end > 0, 1), else_=0) - case((MONTHS.c.mrr_start > 0, 1), else_=0))
    rows = session.execute(
        select(MONTHS.c.cohort, MONTHS.c.month, MONTHS.c.currency, func.sum(paying_change),
               func.sum(MONTHS.c.mrr_end - MONTHS.c.mrr_start))
        .where(MONTHS.c.cohort.between(first, last), MONTHS.c.month <= last)
        .group_by(MONTHS.c.cohort, MONTHS.c.month, MONTHS.c.currency)).all()
    day = month_end(last, today)
    convert = _Converter(session, currency, {row[2] for row in rows}, [day])
    changes: dict[date, dict[date, list[Any]]] = {}
    for cohort, month, billed, paying, mrr in rows:
        changes.setdefault(cohort, {}).setdefault(max(month, cohort), []).append((billed, int(paying), mrr))
    result = []
    for cohort in months:
        if cohort not in changes:
            continue
        count, amounts, cells = 0, {}, []
        for at in months[months.index(cohort):]:
            for billed, paying, mrr in changes[cohort].get(at, []):
                count += paying
                amounts[billed] = amounts.get(billed, ZERO) + mrr
            cells.append((count, convert(amounts, day)))
        if cells[0][0] > 0:
            result.append(CohortRow(cohort, cells[0][0], cells[0][1], cells))
    return result


def period_months(today: date, period: int) -> list[date]:
    """The `period` months up to the current one (to date), oldest first."""
    current = month_start(today)
    return months_between(add_months(current, -(period - 1)), current)


def metrics(session: Session, currency: str, today: date, period: int, *, with_cohorts: bool = True) -> Metrics:
    """The metrics page: `period` months up to the current one (to date), the trailing twelve months' retention
    and (unless the page loads them apart) the cohorts that started in the period, in the reporting currency."""
    current = month_start(today)
    months = period_months(today, period)
    return Metrics(currency, monthly(session, currency, months, today),
                   retention(session, currency, add_months(current, -11), current, today),
                   cohorts(session, currency, months, today) if with_cohorts else [])


# `lost`: the churn and contraction rows, which the gross MRR churn rate (and so LTV) divides by the month's start.
FIGURES = ("paying", "churned", "new_logos", "lost", *MOVEMENTS)


def rows_behind(month: date, figure: str) -> Any:
    """The `account_months` rows a figure of `month` is the sum or count of (a select, for paging), in every
    billing currency (each row in its own)."""
    if figure == "paying":
        return select(MONTHS).where(_active_at(month), MONTHS.c.mrr_end > 0)
    this_month = MONTHS.c.month == month
    if figure == "churned":
        return select(MONTHS).where(this_month, MONTHS.c.mrr_start > 0, MONTHS.c.mrr_end <= 0)
    if figure == "new_logos":
        return select(MONTHS).where(this_month, MONTHS.c.mrr_start <= 0, MONTHS.c.mrr_end > 0)
    if figure == "lost":
        return select(MONTHS).where(this_month, or_(MONTHS.c.churn != 0, MONTHS.c.contraction != 0))
    if figure in MOVEMENTS:
        return select(MONTHS).where(this_month, MONTHS.c[figure] != 0)
    raise ValueError(f"unknown figure {figure!r}; known: {', '.join(FIGURES)}")


def _behind_with_names(month: date, figure: str) -> tuple[Any, list[SortKey]]:
    """The rows behind a figure with their account's name, and the keys that order them (name, subscription)."""
    behind = rows_behind(month, figure).subquery()
    keys = [SortKey(TENANTS.c.name, False), SortKey(behind.c.subscription_id, False)]
    query = select(behind, TENANTS.c.name.label("tenant_name")).join(TENANTS, TENANTS.c.id == behind.c.tenant_id)
    return query, keys


def rows_page(session: Session, month: date, figure: str, *, page: int, per_page: int,
              after: str | None) -> Page[Any]:
    """One page of the accounts behind a figure, by account name, with their month's row and how many there are."""
    query, keys = _behind_with_names(month, figure)
    return fetch_page(session, with_keys(query, keys), keys, page=page, per_page=per_page, after=after,
                      to_row=lambda row: row)


def all_rows(session: Session, month: date, figure: str) -> Iterator[Any]:
    """Every account behind a figure, for the CSV, a keyset chunk at a time."""
    query, keys = _behind_with_names(month, figure)
    return stream_rows(session, with_keys(query, keys), keys, to_row=lambda row: row)

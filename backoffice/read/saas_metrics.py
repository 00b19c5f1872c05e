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

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, DateTime, and_, case, cast, func, literal, or_, select, text
from sqlalchemy.orm import Session

from backoffice.accounts.models import Tenant
from backoffice.billing.models import AccountMonth
from backoffice.paging import Page, SortKey, fetch_page, stream_rows, with_keys

MONTHS = AccountMonth.__table__
TENANTS = Tenant.__table__
ZERO = Decimal("0.00")
MOVEMENTS = ("new", "expansion", "contraction", "churn", "reactivation", "other")
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


def _active_at(month: Any) -> Any:
    """The account's row that holds its MRR at the end of `month`."""
    return and_(MONTHS.c.month <= month, or_(MONTHS.c.next_month.is_(None), MONTHS.c.next_month > month))


def monthly(session: Session, currency: str, months: list[date]) -> list[Month]:
    """Each month's figures (months ascending and consecutive): what came before in one sum, then each month."""
    first, last = months[0], months[-1]
    mine = MONTHS.c.currency == currency
    paying_change = (case((MONTHS.c.mrr_end > 0, 1), else_=0) - case((MONTHS.c.mrr_start > 0, 1), else_=0))
    before = session.execute(select(func.coalesce(func.sum(MONTHS.c.mrr_end - MONTHS.c.mrr_start), ZERO),
                                    func.coalesce(func.sum(paying_change), 0))
                             .where(mine, MONTHS.c.month < first)).one()
    kept = MONTHS.c.mrr_start > 0
    change = MONTHS.c.mrr_end - MONTHS.c.mrr_start
    rows = {row.month: row for row in session.execute(
        select(MONTHS.c.month, func.sum(change).label("change"), func.sum(paying_change).label("paying_change"),
               *(func.sum(MONTHS.c[name]).label(name) for name in MOVEMENTS),
               func.count().filter(and_(kept, MONTHS.c.mrr_end <= 0)).label("churned_logos"),
               func.count().filter(and_(~kept, MONTHS.c.mrr_end > 0)).label("new_logos"),
               func.coalesce(func.sum(change).filter(kept), ZERO).label("retained_change"),
               func.coalesce(func.sum(func.least(change, 0)).filter(kept), ZERO).label("retained_loss"))
        .where(mine, MONTHS.c.month.between(first, last)).group_by(MONTHS.c.month))}
    mrr, paying, result = before[0], int(before[1]), []
    for month in months:
        row = rows.get(month)
        if row is None:
            result.append(Month(month, mrr, mrr, paying, paying, dict.fromkeys(MOVEMENTS, ZERO), 0, 0, ZERO, ZERO))
            continue
        end, paying_end = mrr + row.change, paying + int(row.paying_change)
        result.append(Month(month, mrr, end, paying, paying_end, {name: row._mapping[name] for name in MOVEMENTS},
                            row.churned_logos, row.new_logos, row.retained_change, row.retained_loss))
        mrr, paying = end, paying_end
    return result


def retention(session: Session, currency: str, start: date, end: date) -> Retention:
    """NRR and GRR from the end of the month before `start` to the end of `end`."""
    before = add_months(start, -1)
    then = (select(MONTHS.c.subscription_id, MONTHS.c.mrr_end.label("mrr"))
            .where(MONTHS.c.currency == currency, _active_at(before), MONTHS.c.mrr_end > 0).subquery())
    now = (select(MONTHS.c.subscription_id, MONTHS.c.mrr_end.label("mrr"))
           .where(MONTHS.c.currency == currency, _active_at(end)).subquery())
    later = func.coalesce(now.c.mrr, ZERO)
    row = session.execute(
        select(func.count(), func.coalesce(func.sum(then.c.mrr), ZERO), func.coalesce(func.sum(later), ZERO),
               func.coalesce(func.sum(func.least(later, then.c.mrr)), ZERO))
        .select_from(then.outerjoin(now, now.c.subscription_id == then.c.subscription_id))).one()
    return Retention(start, end, int(row[0]), row[1], row[2], row[3])


def cohorts(session: Session, currency: str, months: list[date]) -> list[CohortRow]:
    """The accounts of each cohort in `months`, and how many of them pay, with what MRR, at each later month's end."""
    first, last = months[0], months[-1]
    series = func.generate_series(cast(literal(first), DateTime), cast(literal(last), DateTime),
                                  text("interval '1 month'"))
    grid = select(cast(series, Date).label("at")).subquery()
    rows = session.execute(
        select(MONTHS.c.cohort, grid.c.at, func.count().filter(MONTHS.c.mrr_end > 0),
               func.coalesce(func.sum(MONTHS.c.mrr_end), ZERO))
        .select_from(MONTHS.join(grid, and_(grid.c.at >= MONTHS.c.cohort, _active_at(grid.c.at))))
        .where(MONTHS.c.currency == currency, MONTHS.c.cohort.between(first, last))
        .group_by(MONTHS.c.cohort, grid.c.at)).all()
    figures = {(cohort, at): (int(count), mrr) for cohort, at, count, mrr in rows}
    result = []
    for cohort in months:
        base = figures.get((cohort, cohort))
        if base is None or base[0] == 0:
            continue
        later = months[months.index(cohort):]
        result.append(CohortRow(cohort, base[0], base[1], [figures.get((cohort, at), (0, ZERO)) for at in later]))
    return result


def metrics(session: Session, currency: str, today: date, period: int) -> Metrics:
    """The metrics page: `period` months up to the current one (to date), the trailing twelve months' retention
    and the cohorts that started in the period."""
    current = month_start(today)
    months = months_between(add_months(current, -(period - 1)), current)
    return Metrics(currency, monthly(session, currency, months),
                   retention(session, currency, add_months(current, -11), current),
                   cohorts(session, currency, months))


FIGURES = ("paying", "churned", "new_logos", *MOVEMENTS)


def rows_behind(currency: str, month: date, figure: str) -> Any:
    """The `account_months` rows a figure of `month` is the sum or count of (a select, for paging)."""
    mine = MONTHS.c.currency == currency
    if figure == "paying":
        return select(MONTHS).where(mine, _active_at(month), MONTHS.c.mrr_end > 0)
    this_month = and_(mine, MONTHS.c.month == month)
    if figure == "churned":
        return select(MONTHS).where(this_month, MONTHS.c.mrr_start > 0, MONTHS.c.mrr_end <= 0)
    if figure == "new_logos":
        return select(MONTHS).where(this_month, MONTHS.c.mrr_start <= 0, MONTHS.c.mrr_end > 0)
    if figure in MOVEMENTS:
        return select(MONTHS).where(this_month, MONTHS.c[figure] != 0)
    raise ValueError(f"unknown figure {figure!r}; known: {', '.join(FIGURES)}")


def _behind_with_names(currency: str, month: date, figure: str) -> tuple[Any, list[SortKey]]:
    """The rows behind a figure with their account's name, and the keys that order them (name, subscription)."""
    behind = rows_behind(currency, month, figure).subquery()
    keys = [SortKey(TENANTS.c.name, False), SortKey(behind.c.subscription_id, False)]
    query = select(behind, TENANTS.c.name.label("tenant_name")).join(TENANTS, TENANTS.c.id == behind.c.tenant_id)
    return query, keys


def rows_page(session: Session, currency: str, month: date, figure: str, *, page: int, per_page: int,
              after: str | None) -> Page[Any]:
    """One page of the accounts behind a figure, by account name, with their month's row and how many there are."""
    query, keys = _behind_with_names(currency, month, figure)
    return fetch_page(session, with_keys(query, keys), keys, page=page, per_page=per_page, after=after,
                      to_row=lambda row: row)


def all_rows(session: Session, currency: str, month: date, figure: str) -> Iterator[Any]:
    """Every account behind a figure, for the CSV, a keyset chunk at a time."""
    query, keys = _behind_with_names(currency, month, figure)
    return stream_rows(session, with_keys(query, keys), keys, to_row=lambda row: row)

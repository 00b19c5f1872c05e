"""The dashboard's figures (reference §2, DESIGN §4.5, §4.9, §4.10): KPI tiles, trends, distributions, recents.

Every card costs in proportion to the days it shows, not to the history behind them: MRR comes from
`mrr_daily`, revenue from `revenue_daily` (both one row per day and kind), counts from indexed time ranges.
A period is the last N UTC days including today; the prior period is the N days before it. Soft-deleted
tenants are out of the counts and in the money (their history never moves).

One definition per total, so that the cards agree (DESIGN §4.9, §4.10):
- Blended MRR = MRR at the end of today = Σ the ledger's effective deltas up to today (`mrr_daily`), every
  account, deleted ones included: the tile, the trend's last point and the movements' end are one figure. The
  subscriptions' stored forward MRR is shown beside it only where it differs, with the accounts that explain it.
- Total revenue = Σ net revenue ex-VAT of every account, deleted ones included (`revenue_daily`): the tile, the
  revenue chart's last point, Σ lifetime values and the Invoices page's total without a filter.
- Money billed in another currency counts in the reporting currency (backoffice/fx): MRR at the rate of the day
  shown, revenue at the rate of its day; the movements convert each day's deltas at that day's rate and `fx` is
  what the rates alone moved, so they still sum to the change in reporting-currency MRR.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backoffice.accounts.models import AccountIndex, LoginDaily, Tenant, UserSeenDaily, UserSession
from backoffice.billing.ledger.revenue import utc_day
from backoffice.billing.ledger.vocabulary import EventType, free_plan
from backoffice.billing.lists import invoices
from backoffice.billing.models import (
    MrrDaily,
    RevenueDaily,
    StripeEvent,
    Subscription,
    effective_billing_events,
)
from backoffice.billing.reconcile.health import TOLERANCE, MrrMismatches, mrr_mismatches
from backoffice.fx import rates

PERIODS = (7, 30, 90)
DEFAULT_PERIOD = 30
ZERO = Decimal("0.00")
# `fx` is no ledger movement: the change in reporting-currency MRR that exchange rates alone made.
FX = "fx"
MOVEMENT_ORDER = ("new", "expansion", "reactivation", "contraction", "churn", "other", FX)
# A period longer than this shows its counts per week: 90 daily bars are hairlines nobody can read.
WEEKLY_AFTER = 31
TENANTS = Tenant.__table__
# Live accounts are counted from the accounts list's read model: its indexes hold plan and creation.
ACCOUNTS = AccountIndex.__table__
LOGIN_DAYS = LoginDaily.__table__
SEEN_DAYS = UserSeenDaily.__table__
SESSIONS = UserSession.__table__
MRR = MrrDaily.__table__
REVENUE = RevenueDaily.__table__


@dataclass(frozen=True)
class Window:
    """The period's days (the last `days` UTC days up to today) and the prior period's, as of `now`."""

    days: int
    now: datetime

    @property
    def today(self) -> date:
        return self.now.astimezone(UTC).date()

    @property
    def first(self) -> date:
        return self.today - timedelta(days=self.days - 1)

    @property
    def prior_first(self) -> date:
        return self.first - timedelta(days=self.days)

    @property
    def start(self) -> datetime:
        """The period's first moment: midnight UTC of its first day."""
        return _start_of(self.first)

    def current_days(self) -> list[date]:
        return [self.first + timedelta(days=offset) for offset in range(self.days)]

    def prior_days(self) -> list[date]:
        return [self.prior_first + timedelta(days=offset) for offset in range(self.days)]


@dataclass(frozen=True)
class Trend:
    """One value per day of the period, and the prior period's value on the matching day."""

    days: list[date]
    current: list[Any]
    prior: list[Any]
    bucket_days: int = 1  # each value covers this many days from its day on (7: a week)

    @property
    def last(self) -> Any:
        return self.current[-1]


@dataclass(frozen=True)
class Kpis:
    total_accounts: int
    new_accounts: int
    new_accounts_prior: int
    forward_mrr: Decimal  # Σ the subscriptions' stored forward MRR: equals mrr_end while the books agree
    mrr_start: Decimal  # the event log's MRR at the end of the day before the period
    mrr_end: Decimal  # … and at the end of today: the Blended MRR tile
    total_revenue: Decimal
    active_users: int
    active_sessions: int
    currency: str
    deleted_revenue: Decimal = ZERO  # the part of total_revenue that soft-deleted accounts brought
    mismatches: MrrMismatches | None = None  # the accounts whose forward MRR differs, when the two sums do

    @property
    def blended_mrr(self) -> Decimal:
        """The tile: MRR at the end of today from the ledger, the same figure as the trend's and movements' end."""
        return self.mrr_end

    @property
    def forward_differs(self) -> bool:
        return abs(self.forward_mrr - self.mrr_end) >= TOLERANCE

    @property
    def new_accounts_delta_percent(self) -> int | None:
        """New accounts against the prior period, in whole percent (half to even); None without a prior."""
        if not self.new_accounts_prior:
            return None
        change = Decimal(self.new_accounts - self.new_accounts_prior) * 100 / self.new_accounts_prior
        return int(change.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))

    @property
    def mrr_delta_percent(self) -> Decimal | None:
        """MRR's change over the period from the event log (not from signups), to one decimal; None from 0."""
        if not self.mrr_start:
            return None
        return ((self.mrr_end - self.mrr_start) * 100 / self.mrr_start).quantize(Decimal("0.1"), ROUND_HALF_EVEN)


@dataclass(frozen=True)
class PlanShare:
    plan: str
    accounts: int
    percent: Decimal


@dataclass(frozen=True)
class Movements:
    """MRR movements over the period (DESIGN §4.9): they sum to end − start exactly."""

    start: Decimal
    end: Decimal
    amounts: dict[str, Decimal] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def change(self) -> Decimal:
        return self.end - self.start

    def shown(self) -> list[str]:
        """Every kind but `other` and `fx`, which show only when they moved something."""
        return [kind for kind in MOVEMENT_ORDER
                if kind not in ("other", FX) or self.amounts.get(kind) or self.counts.get(kind)]


def window(days: int, now: datetime | None = None) -> Window:
    if days not in PERIODS:
        raise ValueError(f"period must be one of {PERIODS}")
    return Window(days, now or datetime.now(UTC))


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time(), UTC)


def period_start(days: int, now: datetime | None = None) -> datetime:
    """Midnight UTC of the first of the last `days` UTC days: where a list opened from a tile starts."""
    return window(days, now).start


# --- tiles ------------------------------------------------------------------------------------------------
def kpis(session: Session, currency: str, period: Window) -> Kpis:
    """The five tiles' figures for the period."""
    now = period.now
    live = ~ACCOUNTS.c.deleted
    total = sum(_accounts_per_plan(session).values())
    # By UTC day, as every card counts: the accounts list's `created` filter opens exactly the new ones.
    new, new_prior = session.execute(select(
        func.count().filter(ACCOUNTS.c.created_at >= period.start),
        func.count().filter(ACCOUNTS.c.created_at < period.start),
    ).where(live, ACCOUNTS.c.created_at >= _start_of(period.prior_first))).one()
    forward_by_currency = dict(session.execute(
        select(Subscription.current_price_currency, func.sum(Subscription.forward_mrr))
        .where(Subscription.current_price_currency.is_not(None)).group_by(Subscription.current_price_currency)).all())
    rate = rates.rates_for(session, sorted({currency, *forward_by_currency}), [period.today], currency)
    forward = sum((rates.convert(amount, rate[(billed, period.today)]) for billed, amount in forward_by_currency.items()),
                  ZERO)
    # Users last seen on one of the period's days, from the rollup: a row per day, however many users.
    active_users = session.scalar(select(func.coalesce(func.sum(SEEN_DAYS.c.users), 0))
                                  .where(SEEN_DAYS.c.day >= period.first))
    sessions = session.scalar(select(func.count()).where(
        SESSIONS.c.revoked_at.is_(None),
        func.coalesce(SESSIONS.c.last_active_at, SESSIONS.c.created_at) >= now - timedelta(hours=24)))
    start, end = mrr_at(session, currency, [period.first - timedelta(days=1), period.today])
    return Kpis(total_accounts=total, new_accounts=new, new_accounts_prior=new_prior,
                forward_mrr=forward, mrr_start=start, mrr_end=end, total_revenue=total_revenue(session, currency, period.today),
                active_users=active_users, active_sessions=sessions, currency=currency,
                deleted_revenue=invoices.deleted_accounts_revenue(session, currency),
                mismatches=mrr_mismatches(session) if abs(forward - end) >= TOLERANCE else None)


def total_revenue(session: Session, currency: str, today: date | None = None) -> Decimal:
    """All-time net revenue ex-VAT in `currency` (the Total revenue tile = the revenue chart's last point)."""
    today = today or datetime.now(UTC).date()
    return _revenue_through(session, currency, [today])[0]


# --- running sums over the daily rollups, in the reporting currency --------------------------------------
def _by_currency(session: Session, table: Any, amount: Any, where: Iterable[Any]) -> dict[tuple[date, str], Decimal]:
    return {(day, currency): total for day, currency, total in session.execute(
        select(table.c.day, table.c.currency, func.sum(amount)).where(*where).group_by(table.c.day, table.c.currency))}


def mrr_at(session: Session, currency: str, days: list[date]) -> list[Decimal]:
    """MRR at the end of each day (ascending): the running sum of the ledger's deltas (DESIGN §4.9), each billing
    currency's converted into `currency` at that day's rate (backoffice/fx). What came before the first day is one
    sum per currency, then each day's rows."""
    first, last = days[0], days[-1]
    running = dict(session.execute(select(MRR.c.currency, func.sum(MRR.c.delta_sum))
                                   .where(MRR.c.day < first).group_by(MRR.c.currency)).all())
    daily = _by_currency(session, MRR, MRR.c.delta_sum, [MRR.c.day.between(first, last)])
    currencies = {currency, *running, *(billed for _, billed in daily)}
    rate = rates.rates_for(session, sorted(currencies), days, currency)
    values, shown, day = [], set(days), first
    while day <= last:
        for billed in currencies:
            running[billed] = running.get(billed, ZERO) + daily.get((day, billed), ZERO)
        if day in shown:
            values.append(sum((rates.convert(amount, rate[(billed, day)]) for billed, amount in running.items()),
                              ZERO))
        day += timedelta(days=1)
    return values


def _revenue_through(session: Session, currency: str, days: list[date]) -> list[Decimal]:
    """Cumulative net revenue at the end of each day (ascending), each day's amounts converted at that day's rate
    (revenue keeps the rate of its payment day): the reporting currency's in one sum, the others per day."""
    first, last = days[0], days[-1]
    before = session.scalar(select(func.coalesce(func.sum(REVENUE.c.amount), ZERO))
                            .where(REVENUE.c.currency == currency, REVENUE.c.day < first))
    foreign = _by_currency(session, REVENUE, REVENUE.c.amount, [REVENUE.c.currency != currency, REVENUE.c.day <= last])
    own = _by_currency(session, REVENUE, REVENUE.c.amount, [REVENUE.c.currency == currency,
                                                           REVENUE.c.day.between(first, last)])
    rate = rates.rates_for(session, sorted({billed for _, billed in foreign}), sorted({d for d, _ in foreign}),
                           currency)
    converted: dict[date, Decimal] = {}
    for (day, billed), amount in foreign.items():
        converted[day] = converted.get(day, ZERO) + rates.convert(amount, rate[(billed, day)])
    running = before + sum((amount for day, amount in converted.items() if day < first), ZERO)
    values, shown, day = [], set(days), first
    while day <= last:
        running += own.get((day, currency), ZERO) + converted.get(day, ZERO)
        if day in shown:
            values.append(running)
        day += timedelta(days=1)
    return values


def mrr_trend(session: Session, currency: str, period: Window) -> Trend:
    values = mrr_at(session, currency, period.prior_days() + period.current_days())
    return Trend(period.current_days(), values[period.days:], values[:period.days])


def revenue_trend(session: Session, currency: str, period: Window) -> Trend:
    """Cumulative net revenue ex-VAT at the end of each day; reversals subtract on their own day."""
    values = _revenue_through(session, currency, period.prior_days() + period.current_days())
    return Trend(period.current_days(), values[period.days:], values[:period.days])


# --- counts per day ---------------------------------------------------------------------------------------
def _per_day(session: Session, column: Any, where: Iterable[Any], period: Window) -> Trend:
    since = _start_of(period.prior_first)
    counts = dict(session.execute(select(utc_day(column), func.count()).where(column >= since, *where)
                                  .group_by(utc_day(column))).all())
    return Trend(period.current_days(), [counts.get(day, 0) for day in period.current_days()],
                 [counts.get(day, 0) for day in period.prior_days()])


def account_growth(session: Session, period: Window) -> Trend:
    """New accounts per day, or per week past WEEKLY_AFTER days (soft-deleted ones left out)."""
    daily = _per_day(session, TENANTS.c.created_at, [TENANTS.c.deleted_at.is_(None)], period)
    return by_week(daily) if period.days > WEEKLY_AFTER else daily


def by_week(trend: Trend) -> Trend:
    """Sum a daily count per 7 days from the period's first day; the last week ends today, so may be shorter."""
    starts = range(0, len(trend.days), 7)
    return Trend([trend.days[i] for i in starts], [sum(trend.current[i:i + 7]) for i in starts],
                 [sum(trend.prior[i:i + 7]) for i in starts], bucket_days=7)


def login_activity(session: Session, period: Window) -> Trend:
    """Completed sign-ins per day, by any method (from the `login_daily` rollup: one row per day)."""
    counts = dict(session.execute(select(LOGIN_DAYS.c.day, LOGIN_DAYS.c.succeeded)
                                  .where(LOGIN_DAYS.c.day.between(period.prior_first, period.today))).all())
    return Trend(period.current_days(), [counts.get(day, 0) for day in period.current_days()],
                 [counts.get(day, 0) for day in period.prior_days()])


# --- distributions and recents ----------------------------------------------------------------------------
def plan_distribution(session: Session, plan_order: Iterable[str]) -> list[PlanShare]:
    """Accounts per plan: every plan of the catalog, even at 0, then any other plan found; with its share."""
    plan_order = tuple(plan_order)
    free = free_plan(plan_order)
    counts: dict[str, int] = {}
    for plan, accounts in _accounts_per_plan(session).items():  # no plan is the free plan
        counts[plan or free] = counts.get(plan or free, 0) + accounts
    order = list(dict.fromkeys(plan_order))
    order += sorted(name for name in counts if name not in order)
    total = sum(counts.values())
    return [PlanShare(name, counts.get(name, 0),
                      (Decimal(counts.get(name, 0)) * 100 / total).quantize(Decimal("0.1"), ROUND_HALF_EVEN)
                      if total else Decimal("0.0"))
            for name in order]


def _accounts_per_plan(session: Session) -> dict[str | None, int]:
    """Live accounts per plan (None: no plan), from the read model's plan index alone."""
    counts: dict[str | None, int] = {}
    for plan, accounts in session.execute(select(ACCOUNTS.c.plan, func.count()).where(~ACCOUNTS.c.deleted)
                                          .group_by(ACCOUNTS.c.plan)).all():
        counts[plan] = counts.get(plan, 0) + accounts
    return counts


def recent_signups(session: Session, limit: int = 6) -> list[Any]:
    """The newest accounts."""
    return session.execute(select(TENANTS.c.id, TENANTS.c.name, TENANTS.c.plan, TENANTS.c.country, TENANTS.c.logo,
                                  TENANTS.c.created_at)
                           .where(TENANTS.c.deleted_at.is_(None))
                           .order_by(TENANTS.c.created_at.desc(), TENANTS.c.id.desc()).limit(limit)).all()


def recent_billing_events(session: Session, limit: int = 6) -> list[Any]:
    """The newest ledger rows across accounts, NoOp left out, with their account's name."""
    ledger = effective_billing_events
    return session.execute(
        select(ledger.c.id, ledger.c.tenant_id, TENANTS.c.name.label("tenant_name"), ledger.c.event_type,
               ledger.c.from_plan, ledger.c.to_plan, ledger.c.amount_delta, ledger.c.committed_mrr,
               ledger.c.currency, ledger.c.occurred_at)
        .join(TENANTS, TENANTS.c.id == ledger.c.tenant_id)
        .where(ledger.c.event_type != EventType.NO_OP)
        .order_by(ledger.c.occurred_at.desc(), ledger.c.position.desc(), ledger.c.id.desc()).limit(limit)).all()


def mrr_movements(session: Session, currency: str, period: Window) -> Movements:
    """MRR movements over the period's days, from the rollup: they sum to the MRR change exactly."""
    start, end = mrr_at(session, currency, [period.first - timedelta(days=1), period.today])
    rows = session.execute(select(MRR.c.day, MRR.c.currency, MRR.c.movement, func.sum(MRR.c.delta_sum),
                                  func.sum(MRR.c.event_count))
                           .where(MRR.c.day.between(period.first, period.today))
                           .group_by(MRR.c.day, MRR.c.currency, MRR.c.movement)).all()
    rate = rates.rates_for(session, sorted({billed for _, billed, *_ in rows}), sorted({day for day, *_ in rows}),
                           currency)
    amounts: dict[str, Decimal] = {}
    counts: dict[str, int] = {}
    for day, billed, movement, delta, count in rows:
        amounts[movement] = amounts.get(movement, ZERO) + rates.convert(delta, rate[(billed, day)])
        counts[movement] = counts.get(movement, 0) + int(count)
    # What the rates alone moved: MRR in other currencies is worth more or less at the end than at the start.
    fx = (end - start) - sum(amounts.values(), ZERO)
    if fx:
        amounts[FX] = fx
    return Movements(start, end, amounts, counts)


def data_current_through(session: Session) -> datetime | None:
    """When the newest archived Stripe event happened: what the MRR and revenue cards know up to."""
    return session.scalar(select(func.max(StripeEvent.stripe_created_at)))

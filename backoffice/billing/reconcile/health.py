"""The data-quality figures behind the banners: drift, unsynced subscriptions, and MRR that does not agree.

The drift and unsynced counts are of live accounts (soft-deleted tenants are out, as in the accounts list
the banners link to). MRR consistency compares three figures that agree by construction when the ledger,
the rollup and the projection are in step (DESIGN §4.9): Σ stored forward MRR of the subscriptions, Σ of
each subscription's latest effective committed MRR (`ledger_tips`, which the database derives from the ledger
itself), and Σ of the effective deltas (read from `mrr_daily`,
which the replay keeps in the same transaction). Money history keeps soft-deleted tenants in.

Where the first two disagree, the accounts that explain it are those whose subscription's stored forward MRR
differs from its latest effective committed MRR (`mrr_mismatch_tenants`): the banner links to them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from sqlalchemy import Select, exists, func, literal, select, union_all
from sqlalchemy.orm import Session

from backoffice.accounts.models import AccountIndex, Tenant
from backoffice.billing.models import LedgerTip, MrrDaily, Subscription

TOLERANCE = Decimal("0.01")
ZERO = Decimal("0.00")
# The drift sweep runs daily (DESIGN §2.4): a newest check older than two days means the sweep is not running.
DRIFT_CHECK_STALE = timedelta(hours=48)
SUBSCRIPTIONS = Subscription.__table__
TIPS = LedgerTip.__table__
DAILY = MrrDaily.__table__
TENANTS = Tenant.__table__
# The accounts list's read model (migration 0006) answers "how many accounts" the way the list counts them.
INDEX = AccountIndex.__table__


class AccountCounts(NamedTuple):
    """Live accounts the banners speak of: those with billing drift detected (and not acknowledged), and those with
    a priced subscription and no ledger row yet, whom the MRR trend misses."""

    drift: int
    unsynced: int


def account_counts(session: Session) -> AccountCounts:
    """Both counts in one pass over the accounts list's read model."""
    drift, unsynced = session.execute(select(
        func.count().filter(INDEX.c.drift), func.count().filter(INDEX.c.priced, ~INDEX.c.ledgered))
        .where(~INDEX.c.deleted)).one()
    return AccountCounts(drift, unsynced)


@dataclass(frozen=True)
class MrrConsistency:
    """The three MRR figures of DESIGN §4.9, in one currency."""

    currency: str
    forward: Decimal
    committed: Decimal
    deltas: Decimal

    @property
    def consistent(self) -> bool:
        figures = (self.forward, self.committed, self.deltas)
        return max(figures) - min(figures) < TOLERANCE


def mrr_figures(session: Session) -> dict[str, MrrConsistency]:
    """The three figures of every currency that any of them holds an amount in, read in one pass: Σ stored forward
    MRR of the subscriptions, Σ latest committed MRR and Σ effective deltas, each summed in its own currency.

    Every page draws the banners, so the figures are one statement rather than a round trip per figure and currency.
    Each subscription's latest effective row comes from `ledger_tips`, which the ledger's triggers keep (migration
    0010): looked up per subscription through the view on every poll it cost 0.4 s at 30,000 subscriptions."""
    # Each source summed by currency before the three are put side by side: a few rows to combine, not every one.
    sources = union_all(
        select(SUBSCRIPTIONS.c.current_price_currency.label("currency"),
               func.sum(SUBSCRIPTIONS.c.forward_mrr).label("forward"), literal(ZERO).label("committed"),
               literal(ZERO).label("deltas"))
        .where(SUBSCRIPTIONS.c.current_price_currency.is_not(None)).group_by(SUBSCRIPTIONS.c.current_price_currency),
        select(TIPS.c.currency, literal(ZERO), func.sum(TIPS.c.committed_mrr), literal(ZERO)).group_by(TIPS.c.currency),
        select(DAILY.c.currency, literal(ZERO), literal(ZERO), func.sum(DAILY.c.delta_sum)).group_by(DAILY.c.currency)
    ).subquery()
    rows = session.execute(select(sources.c.currency, *(func.coalesce(func.sum(sources.c[name]), ZERO)
                                                        for name in ("forward", "committed", "deltas")))
                           .group_by(sources.c.currency)).all()
    return {currency: MrrConsistency(currency, forward, committed, deltas)
            for currency, forward, committed, deltas in rows}


def mrr_consistency(session: Session, currency: str) -> MrrConsistency:
    """Compare Σ forward MRR, Σ latest committed MRR and Σ deltas in one currency (all zero where none is held)."""
    return mrr_figures(session).get(currency) or MrrConsistency(currency, ZERO, ZERO, ZERO)


def billed_currencies(session: Session) -> set[str]:
    """Every currency the subscriptions, the ledger's tips or the MRR rollup hold an amount in."""
    return set(mrr_figures(session))


def worst_mrr_consistency(session: Session, platform_currency: str) -> MrrConsistency:
    """The banner's figures: the first billing currency whose three figures disagree (each compared in its own
    currency, the platform's first), else the platform currency's."""
    figures = mrr_figures(session)
    checks = [figures.get(currency) or MrrConsistency(currency, ZERO, ZERO, ZERO)
              for currency in [platform_currency, *sorted(set(figures) - {platform_currency})]]
    return next((check for check in checks if not check.consistent), checks[0])


def mrr_mismatch_tenants() -> Select:
    """The tenants whose subscription's stored forward MRR differs from its latest effective committed MRR by at
    least 0.01 (no ledger row yet counts as 0): together they are the gap between the banner's first two figures."""
    committed = (select(func.coalesce(func.sum(TIPS.c.committed_mrr), ZERO))
                 .where(TIPS.c.subscription_id == SUBSCRIPTIONS.c.id).scalar_subquery())
    return select(SUBSCRIPTIONS.c.tenant_id).where(func.abs(SUBSCRIPTIONS.c.forward_mrr - committed) >= TOLERANCE)


@dataclass(frozen=True)
class MrrMismatches:
    """How many accounts' figures differ: live ones (listed at /accounts?mrrMismatch=true) and soft-deleted ones."""

    live: int
    deleted: int


def mrr_mismatches(session: Session) -> MrrMismatches:
    """Count the accounts whose forward MRR differs from their ledger, live and deleted apart."""
    differing = mrr_mismatch_tenants().subquery()
    deleted = TENANTS.c.deleted_at.is_not(None)
    live_count, deleted_count = session.execute(
        select(func.count().filter(~deleted), func.count().filter(deleted))
        .select_from(differing.join(TENANTS, TENANTS.c.id == differing.c.tenant_id))).one()
    return MrrMismatches(live_count, deleted_count)


@dataclass(frozen=True)
class DriftCheck:
    """When drift was last checked (the newest check of any subscription), so that a silent banner stack reads as
    "checked and clean" or "not checked"."""

    last: datetime | None
    now: datetime
    any_subscription: bool = True  # with none, there is nothing to check and nothing to say

    @property
    def stale(self) -> bool:
        """Never checked, or not within the last two days: no drift banner then proves nothing."""
        return self.last is None or self.now - self.last > DRIFT_CHECK_STALE


def drift_check(session: Session, now: datetime) -> DriftCheck:
    """The newest drift check of any subscription, as of `now`."""
    last, any_subscription = session.execute(select(func.max(SUBSCRIPTIONS.c.drift_checked_at),
                                                    exists(select(SUBSCRIPTIONS.c.id)))).one()
    return DriftCheck(last, now, any_subscription)

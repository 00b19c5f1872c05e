"""The accounts list: the filtered, sorted, paged accounts with their plan, status and MRR; one account's row.

Soft-deleted tenants never appear. Accounts are found and ordered in account_index (the list's read model),
then read in full from the tenant, its subscription projection and its ledger tips; nothing here writes.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, case, func, literal, or_, select
from sqlalchemy.orm import Session

from backoffice import search
from backoffice.accounts.models import AccountIndex, Tenant
from backoffice.billing.ledger.vocabulary import free_plan
from backoffice.billing.lists.lookup import Carriers, find_carriers
from backoffice.billing.models import ACCOUNT_STATUSES, LedgerTip, Subscription
from backoffice.billing.reconcile.health import TOLERANCE, mrr_mismatch_tenants
from backoffice.fx import rates
from backoffice.paging import Page, SortKey, fetch_page, nulls_last, stream_rows, with_keys

TENANTS = Tenant.__table__
SUBSCRIPTIONS = Subscription.__table__
TIPS = LedgerTip.__table__

ACCOUNT_SORTS = ("name", "plan", "mrr", "renewal", "status", "country", "created")


@dataclass(frozen=True)
class AccountFilter:
    """What the accounts list is narrowed to: OR within plans and within statuses, AND across."""

    search: str | None = None
    plans: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    unsynced: bool = False
    drift_detected: bool = False
    mrr_mismatch: bool = False  # forward MRR differs from the ledger's latest committed MRR (billing.health)
    carriers: Carriers | None = None  # what the search names, when the caller has looked it up already
    created_since: datetime | None = None  # created at or after (the dashboard's "+N new" tile opens exactly these)
    currencies: tuple[str, ...] = ()  # billed in one of these (ISO codes); none: any


@dataclass(frozen=True)
class AccountRow:
    """One account as the list, the pane and the detail header show it."""

    id: str
    name: str
    logo: str | None
    country: str | None
    created_at: datetime
    plan: str
    status: str
    forward_mrr: Decimal
    current_price_amount: Decimal | None
    currency: str | None
    renewal_at: datetime | None
    scheduled_plan: str | None
    cancel_at_period_end: bool
    drift_detected: bool
    state: str
    stripe_customer_id: str | None = None
    subscribed_since: datetime | None = None
    ledger_mrr: Decimal | None = None  # the latest effective committed MRR; None before the first ledger row

    @property
    def mrr_differs(self) -> bool:
        """The subscription's forward MRR and its ledger disagree (the MRR mismatch banner's accounts)."""
        return abs(self.forward_mrr - (self.ledger_mrr or 0)) >= TOLERANCE

    @property
    def struck_mrr(self) -> Decimal | None:
        """The current price, shown struck through, when a downgrade or a cancellation lowers MRR."""
        changing = self.scheduled_plan is not None or self.cancel_at_period_end
        if changing and self.current_price_amount is not None and self.current_price_amount != self.forward_mrr:
            return self.current_price_amount
        return None


def _plan_column(plan_order: Sequence[str]):
    return func.coalesce(TENANTS.c.plan, free_plan(plan_order))


def _status_column():
    return func.coalesce(SUBSCRIPTIONS.c.account_status, "free")


def _base_query(plan_order: Sequence[str]) -> Select:
    return (
        select(
            TENANTS.c.id, TENANTS.c.name, TENANTS.c.logo, TENANTS.c.country, TENANTS.c.created_at,
            _plan_column(plan_order).label("plan"), _status_column().label("status"),
            func.coalesce(SUBSCRIPTIONS.c.forward_mrr, 0).label("forward_mrr"),
            SUBSCRIPTIONS.c.current_price_amount, SUBSCRIPTIONS.c.current_price_currency.label("currency"),
            SUBSCRIPTIONS.c.current_period_end.label("renewal_at"), SUBSCRIPTIONS.c.scheduled_plan,
            func.coalesce(SUBSCRIPTIONS.c.cancel_at_period_end, False).label("cancel_at_period_end"),
            func.coalesce(SUBSCRIPTIONS.c.has_drift_detected, False).label("drift_detected"),
            TENANTS.c.state, SUBSCRIPTIONS.c.stripe_customer_id, SUBSCRIPTIONS.c.subscribed_since,
            select(func.sum(TIPS.c.committed_mrr)).where(TIPS.c.subscription_id == SUBSCRIPTIONS.c.id)
            .scalar_subquery().label("ledger_mrr"),
        )
        .select_from(TENANTS.outerjoin(SUBSCRIPTIONS, SUBSCRIPTIONS.c.tenant_id == TENANTS.c.id))
        .where(TENANTS.c.deleted_at.is_(None))
    )


def _to_account(row: Any) -> AccountRow:
    return AccountRow(*row[:len(AccountRow.__dataclass_fields__)])


INDEX = AccountIndex.__table__


def _filtered(query: Select, criteria: AccountFilter, plan_order: Sequence[str], carriers: Carriers | None) -> Select:
    """Narrow a query over account_index (the list's read model) by the filter; a whole id or email (`carriers`)
    finds the accounts that carry it by equality, a fragment matches names."""
    if carriers is not None:
        query = query.where(INDEX.c.tenant_id.in_(sorted(carriers.tenants)))
    elif criteria.search:
        query = query.where(or_(search.contains(INDEX.c.name_key, criteria.search), INDEX.c.tenant_id == criteria.search))
    if criteria.plans:
        plans = INDEX.c.plan.in_(criteria.plans)
        query = query.where(or_(plans, INDEX.c.plan.is_(None)) if free_plan(plan_order) in criteria.plans else plans)
    if criteria.statuses:
        query = query.where(INDEX.c.status_rank.in_([ACCOUNT_STATUSES.index(status) for status in criteria.statuses]))
    if criteria.currencies:
        query = query.where(INDEX.c.currency.in_(criteria.currencies))
    if criteria.unsynced:
        query = query.where(INDEX.c.priced, ~INDEX.c.ledgered)
    if criteria.drift_detected:
        query = query.where(INDEX.c.drift.is_(True))
    if criteria.created_since is not None:
        query = query.where(INDEX.c.created_at >= criteria.created_since)
    if criteria.mrr_mismatch:
        query = query.where(INDEX.c.tenant_id.in_(mrr_mismatch_tenants()))
    return query


def _rank(column, values: Sequence[str]):
    """Sort position of an enumerated value in its declared order (unknown values last)."""
    return case({value: index for index, value in enumerate(values)}, value=column, else_=len(values))


def mrr_order(session: Session, criteria: AccountFilter, reporting: str | None) -> Any:
    """MRR as the list compares it: in the reporting currency at today's rate when the accounts listed are billed in
    several currencies (49 dollars and 500 kronor do not compare as 49 and 500); otherwise the stored figure, which
    its index serves. A currency with no known rate compares as if it were the reporting one."""
    if reporting is None or len(criteria.currencies) == 1:
        return INDEX.c.mrr
    foreign = [currency for currency in currencies_billed(session) if currency != reporting
               and (not criteria.currencies or currency in criteria.currencies)]
    today = datetime.now(UTC).date()
    known = {currency: rate for (currency, _), rate in rates.rates_at(
        session, [(currency, today) for currency in foreign], reporting).items() if rate is not None}
    if not known:
        return INDEX.c.mrr
    return INDEX.c.mrr * case(known, value=INDEX.c.currency, else_=literal(Decimal(1)))


def account_sort_keys(sort: str, descending: bool, plan_order: Sequence[str], *, searching: bool = False,
                      mrr: Any = None) -> list[SortKey]:
    """The list's order for a sort field: the field, then name, then id (ties by name in both directions).

    Every order but the plan's (whose ranking is configuration) is an index of account_index. While
    searching, the name key is written so that no index serves it: matches of a name fragment cluster in
    name order, and walking an index until 25 of them turn up can read most of the table, where sorting
    the trigram index's few thousand matches costs a few milliseconds. `mrr` is what MRR sorts by (`mrr_order`).
    """
    name_key = INDEX.c.name_key.op("||")("") if searching else INDEX.c.name_key
    name = [SortKey(name_key), SortKey(INDEX.c.tenant_id)]
    by_field: dict[str, list[SortKey]] = {
        "name": [SortKey(name_key, descending), SortKey(INDEX.c.tenant_id, descending)],
        "plan": [SortKey(_rank(func.coalesce(INDEX.c.plan, free_plan(plan_order)), plan_order), descending), *name],
        "mrr": [SortKey(INDEX.c.mrr if mrr is None else mrr, descending), *name],
        "renewal": [*nulls_last(INDEX.c.renewal_at, descending), *name],
        "status": [SortKey(INDEX.c.status_rank, descending), *name],
        "country": [*nulls_last(INDEX.c.country, descending), *name],
        "created": [SortKey(INDEX.c.created_at, descending), *name],
    }
    if sort not in by_field:
        raise ValueError(f"unknown sort {sort!r}")
    return by_field[sort]


def _sort_keys(session: Session, criteria: AccountFilter, sort: str, descending: bool, plan_order: Sequence[str],
               reporting: str | None) -> list[SortKey]:
    mrr = mrr_order(session, criteria, reporting) if sort == "mrr" else None
    return account_sort_keys(sort, descending, plan_order, searching=bool(criteria.search), mrr=mrr)


def _ordering_query(criteria: AccountFilter, keys: list[SortKey], plan_order: Sequence[str],
                    carriers: Carriers | None) -> Select:
    """Only what finds and orders the accounts (the id and the sort keys), from the list's read model."""
    query = select(INDEX.c.tenant_id).where(~INDEX.c.deleted)  # the form of the indexes' predicate
    return with_keys(_filtered(query, criteria, plan_order, carriers), keys)


def _hydrator(session: Session, plan_order: Sequence[str]):
    """Turn ordered (id, keys…) rows into full account rows, in the same order, with one query."""
    def hydrate(rows: list[Any]) -> list[Any]:
        ids = [row[0] for row in rows]
        full = {row.id: row for row in session.execute(_base_query(plan_order).where(TENANTS.c.id.in_(ids)))}
        return [full[tenant_id] for tenant_id in ids]
    return hydrate


def list_accounts(session: Session, criteria: AccountFilter, *, sort: str = "name", descending: bool = False,
                  page: int = 1, per_page: int = 25, after: str | None = None,
                  plan_order: Sequence[str], reporting: str | None = None) -> Page[AccountRow]:
    """One page of the accounts list, with the count of all rows that match; MRR compared in `reporting`."""
    keys = _sort_keys(session, criteria, sort, descending, plan_order, reporting)
    carriers = find_carriers(session, criteria.search, criteria.carriers)
    return fetch_page(session, _ordering_query(criteria, keys, plan_order, carriers), keys, page=page, per_page=per_page,
                      after=after, to_row=_to_account, hydrate=_hydrator(session, plan_order),
                      count_in_page=bool(criteria.search))


def stream_accounts(session: Session, criteria: AccountFilter, *, sort: str = "name", descending: bool = False,
                    plan_order: Sequence[str], reporting: str | None = None) -> Iterator[AccountRow]:
    """Every matching account in the list's order, read in keyset chunks (the CSV export)."""
    keys = _sort_keys(session, criteria, sort, descending, plan_order, reporting)
    carriers = find_carriers(session, criteria.search, criteria.carriers)
    return stream_rows(session, _ordering_query(criteria, keys, plan_order, carriers), keys, to_row=_to_account,
                       hydrate=_hydrator(session, plan_order))


def get_account(session: Session, tenant_id: str, *, plan_order: Sequence[str]) -> AccountRow | None:
    """The account with this id, unless it is unknown or soft-deleted."""
    row = session.execute(_base_query(plan_order).where(TENANTS.c.id == tenant_id)).first()
    return _to_account(row) if row is not None else None


def currencies_billed(session: Session) -> list[str]:
    """The currencies accounts are billed in (the currency filter's choices)."""
    return sorted(session.scalars(select(INDEX.c.currency).where(INDEX.c.currency.is_not(None)).distinct()))

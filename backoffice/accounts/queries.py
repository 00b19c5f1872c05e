"""Reads of accounts: the filtered, sorted list, one account's summary, its people.

Soft-deleted tenants never appear here. Money comes from the subscription projection and the one
net-revenue query (billing.revenue); nothing here writes.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from backoffice import search
from backoffice.accounts.models import AccountIndex, Tenant, User
from backoffice.accounts.names import Named
from backoffice.accounts.people import user_sort_keys
from backoffice.billing.ledger.vocabulary import EventType, free_plan
from backoffice.billing.models import (
    ACCOUNT_STATUSES,
    BillingEvent,
    LedgerTip,
    PaymentTransaction,
    Subscription,
)
from backoffice.billing.reconcile.health import TOLERANCE, mrr_mismatch_tenants
from backoffice.billing.reconcile.recovery import RecoveryOffer, recovery_offer
from backoffice.paging import Page, SortKey, fetch_page, nulls_last, stream_rows, with_keys

TENANTS = Tenant.__table__
SUBSCRIPTIONS = Subscription.__table__
TIPS = LedgerTip.__table__
USERS = User.__table__

ACCOUNT_SORTS = ("name", "plan", "mrr", "renewal", "status", "country", "created")
# A member is active when confirmed and seen within this window (the seed's tenant user counts).
ACTIVE_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class AccountFilter:
    """What the accounts list is narrowed to: OR within plans and within statuses, AND across."""

    search: str | None = None
    plans: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    unsynced: bool = False
    drift_detected: bool = False
    mrr_mismatch: bool = False  # forward MRR differs from the ledger's latest committed MRR (billing.health)


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


def _filtered(query: Select, criteria: AccountFilter, plan_order: Sequence[str]) -> Select:
    """Narrow a query over account_index (the list's read model) by the filter."""
    if criteria.search:
        query = query.where(or_(search.contains(INDEX.c.name_key, criteria.search), INDEX.c.tenant_id == criteria.search))
    if criteria.plans:
        plans = INDEX.c.plan.in_(criteria.plans)
        query = query.where(or_(plans, INDEX.c.plan.is_(None)) if free_plan(plan_order) in criteria.plans else plans)
    if criteria.statuses:
        query = query.where(INDEX.c.status_rank.in_([ACCOUNT_STATUSES.index(status) for status in criteria.statuses]))
    if criteria.unsynced:
        query = query.where(INDEX.c.priced, ~INDEX.c.ledgered)
    if criteria.drift_detected:
        query = query.where(INDEX.c.drift.is_(True))
    if criteria.mrr_mismatch:
        query = query.where(INDEX.c.tenant_id.in_(mrr_mismatch_tenants()))
    return query


def _rank(column, values: Sequence[str]):
    """Sort position of an enumerated value in its declared order (unknown values last)."""
    return case({value: index for index, value in enumerate(values)}, value=column, else_=len(values))


def account_sort_keys(sort: str, descending: bool, plan_order: Sequence[str], *, searching: bool = False) -> list[SortKey]:
    """The list's order for a sort field: the field, then name, then id (ties by name in both directions).

    Every order but the plan's (whose ranking is configuration) is an index of account_index. While
    searching, the name key is written so that no index serves it: matches of a name fragment cluster in
    name order, and walking an index until 25 of them turn up can read most of the table, where sorting
    the trigram index's few thousand matches costs a few milliseconds.
    """
    name_key = INDEX.c.name_key.op("||")("") if searching else INDEX.c.name_key
    name = [SortKey(name_key), SortKey(INDEX.c.tenant_id)]
    by_field: dict[str, list[SortKey]] = {
        "name": [SortKey(name_key, descending), SortKey(INDEX.c.tenant_id, descending)],
        "plan": [SortKey(_rank(func.coalesce(INDEX.c.plan, free_plan(plan_order)), plan_order), descending), *name],
        "mrr": [SortKey(INDEX.c.mrr, descending), *name],
        "renewal": [*nulls_last(INDEX.c.renewal_at, descending), *name],
        "status": [SortKey(INDEX.c.status_rank, descending), *name],
        "country": [*nulls_last(INDEX.c.country, descending), *name],
        "created": [SortKey(INDEX.c.created_at, descending), *name],
    }
    if sort not in by_field:
        raise ValueError(f"unknown sort {sort!r}")
    return by_field[sort]


def _ordering_query(criteria: AccountFilter, keys: list[SortKey], plan_order: Sequence[str]) -> Select:
    """Only what finds and orders the accounts (the id and the sort keys), from the list's read model."""
    query = select(INDEX.c.tenant_id).where(~INDEX.c.deleted)  # the form of the indexes' predicate
    return with_keys(_filtered(query, criteria, plan_order), keys)


def _hydrator(session: Session, plan_order: Sequence[str]):
    """Turn ordered (id, keys…) rows into full account rows, in the same order, with one query."""
    def hydrate(rows: list[Any]) -> list[Any]:
        ids = [row[0] for row in rows]
        full = {row.id: row for row in session.execute(_base_query(plan_order).where(TENANTS.c.id.in_(ids)))}
        return [full[tenant_id] for tenant_id in ids]
    return hydrate


def list_accounts(session: Session, criteria: AccountFilter, *, sort: str = "name", descending: bool = False,
                  page: int = 1, per_page: int = 25, after: str | None = None,
                  plan_order: Sequence[str]) -> Page[AccountRow]:
    """One page of the accounts list, with the count of all rows that match."""
    keys = account_sort_keys(sort, descending, plan_order, searching=bool(criteria.search))
    return fetch_page(session, _ordering_query(criteria, keys, plan_order), keys, page=page, per_page=per_page,
                      after=after, to_row=_to_account, hydrate=_hydrator(session, plan_order),
                      count_in_page=bool(criteria.search))


def stream_accounts(session: Session, criteria: AccountFilter, *, sort: str = "name", descending: bool = False,
                    plan_order: Sequence[str]) -> Iterator[AccountRow]:
    """Every matching account in the list's order, read in keyset chunks (the CSV export)."""
    keys = account_sort_keys(sort, descending, plan_order, searching=bool(criteria.search))
    return stream_rows(session, _ordering_query(criteria, keys, plan_order), keys, to_row=_to_account,
                       hydrate=_hydrator(session, plan_order))


def get_account(session: Session, tenant_id: str, *, plan_order: Sequence[str]) -> AccountRow | None:
    """The account with this id, unless it is unknown or soft-deleted."""
    row = session.execute(_base_query(plan_order).where(TENANTS.c.id == tenant_id)).first()
    return _to_account(row) if row is not None else None


# People of one account.

@dataclass(frozen=True)
class Member(Named):
    """A user row of one tenant (display name and initials by the rules of accounts.names)."""

    id: str
    email: str
    first_name: str | None
    last_name: str | None
    role: str
    email_confirmed: bool
    last_seen_at: datetime | None
    created_at: datetime
    avatar: str | None


@dataclass(frozen=True)
class UserCounts:
    """Total, active (confirmed and seen in 30 days), pending (unconfirmed) and the rest inactive."""

    total: int
    active: int
    pending: int

    @property
    def inactive(self) -> int:
        return self.total - self.active - self.pending

    @property
    def active_share(self) -> float:
        """Share of active members, for the activation bar's width (display only)."""
        return self.active / self.total if self.total else 0.0


@dataclass(frozen=True)
class MemberFilter:
    search: str | None = None
    roles: tuple[str, ...] = ()


_MEMBER_COLUMNS = (USERS.c.id, USERS.c.email, USERS.c.first_name, USERS.c.last_name, USERS.c.role,
                   USERS.c.email_confirmed, USERS.c.last_seen_at, USERS.c.created_at, USERS.c.avatar)


def _members_query(tenant_id: str) -> Select:
    return select(*_MEMBER_COLUMNS).where(USERS.c.tenant_id == tenant_id, USERS.c.deleted_at.is_(None))


def _to_member(row: Any) -> Member:
    return Member(*row[:len(Member.__dataclass_fields__)])


def user_counts(session: Session, tenant_id: str, now: datetime) -> UserCounts:
    active = and_(USERS.c.email_confirmed.is_(True), USERS.c.last_seen_at >= now - ACTIVE_WINDOW)
    row = session.execute(
        select(func.count(), func.count().filter(active), func.count().filter(USERS.c.email_confirmed.is_(False)))
        .where(USERS.c.tenant_id == tenant_id, USERS.c.deleted_at.is_(None))
    ).one()
    return UserCounts(*row)


def owners(session: Session, tenant_id: str) -> list[Member]:
    query = _members_query(tenant_id).where(USERS.c.role == "owner").order_by(USERS.c.created_at, USERS.c.id)
    return [_to_member(row) for row in session.execute(query)]


def recent_members(session: Session, tenant_id: str, limit: int = 3) -> list[Member]:
    """The members seen most recently (never seen last)."""
    query = _members_query(tenant_id).order_by(USERS.c.last_seen_at.desc().nulls_last(), USERS.c.id).limit(limit)
    return [_to_member(row) for row in session.execute(query)]


def member_sort_keys(sort: str, descending: bool) -> list[SortKey]:
    """An account's users sort as the users list does."""
    return user_sort_keys(sort, descending)


def list_members(session: Session, tenant_id: str, criteria: MemberFilter, *, sort: str = "name",
                 descending: bool = False, page: int = 1, per_page: int = 25,
                 after: str | None = None) -> Page[Member]:
    """One page of an account's users: search by email or name, filter by role."""
    query = _members_query(tenant_id)
    if criteria.search:
        full_name = func.concat_ws(" ", USERS.c.first_name, USERS.c.last_name)
        query = query.where(or_(*(search.contains(column, criteria.search)
                                  for column in (USERS.c.email, USERS.c.first_name, USERS.c.last_name, full_name))))
    if criteria.roles:
        query = query.where(USERS.c.role.in_(criteria.roles))
    keys = member_sort_keys(sort, descending)
    return fetch_page(session, with_keys(query, keys), keys, page=page, per_page=per_page, after=after,
                      to_row=_to_member)


@dataclass(frozen=True)
class LastInvoice:
    date: datetime
    amount: Decimal
    currency: str


def last_invoice(session: Session, tenant_id: str) -> LastInvoice | None:
    """The newest invoice of the account: its date and the invoice total."""
    payments = PaymentTransaction.__table__
    row = session.execute(
        select(payments.c.date, payments.c.invoice_total, payments.c.currency)
        .where(payments.c.tenant_id == tenant_id).order_by(payments.c.date.desc(), payments.c.id.desc()).limit(1)
    ).first()
    return LastInvoice(*row) if row is not None else None


@dataclass(frozen=True)
class SubscriptionCard:
    """What the Current plan card shows beyond the list row."""

    status: str | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    cancellation_reason: str | None
    payment_method: dict[str, Any] | None
    billing_info: dict[str, Any] | None
    subscribed_since: datetime | None
    ended_at: datetime | None = None


def subscription_card(session: Session, tenant_id: str) -> SubscriptionCard | None:
    """The subscription fields of the Current plan card, with the last active day of an ended one."""
    subscription = session.scalar(select(Subscription).where(Subscription.tenant_id == tenant_id))
    if subscription is None:
        return None
    ended_at = None
    if subscription.status in ("canceled", "incomplete_expired") or (subscription.plan is None
                                                                       and subscription.subscribed_since):
        events = BillingEvent.__table__
        ended_at = session.scalar(
            select(func.max(events.c.occurred_at)).where(
                events.c.subscription_id == subscription.id,
                events.c.event_type.in_((EventType.EXPIRED, EventType.IMMEDIATELY_CANCELLED))))
    return SubscriptionCard(
        status=subscription.status, current_period_end=subscription.current_period_end,
        cancel_at_period_end=subscription.cancel_at_period_end, cancellation_reason=subscription.cancellation_reason,
        payment_method=subscription.payment_method, billing_info=subscription.billing_info,
        subscribed_since=subscription.subscribed_since, ended_at=ended_at,
    )


@dataclass(frozen=True)
class AccountOverview:
    """Everything the side pane and the detail header show of one account."""

    account: AccountRow
    counts: UserCounts
    owners: list[Member]
    recent_members: list[Member]
    last_invoice: LastInvoice | None
    lifetime_value: Decimal
    currency: str


def account_overview(session: Session, tenant_id: str, *, plan_order: Sequence[str], platform_currency: str,
                     now: datetime) -> AccountOverview | None:
    """The account's summary; lifetime value by the one net-revenue query, in the account's currency."""
    from backoffice.billing.ledger.revenue import lifetime_value

    account = get_account(session, tenant_id, plan_order=plan_order)
    if account is None:
        return None
    currency = account.currency or platform_currency
    return AccountOverview(
        account=account, counts=user_counts(session, tenant_id, now), owners=owners(session, tenant_id),
        recent_members=recent_members(session, tenant_id), last_invoice=last_invoice(session, tenant_id),
        lifetime_value=lifetime_value(session, currency, tenant_id), currency=currency,
    )


@dataclass(frozen=True)
class DriftState:
    """The account's drift as the last check left it: flagged or acknowledged, with its discrepancies."""

    detected: bool
    discrepancies: list[dict[str, Any]]
    checked_at: datetime | None
    acknowledged_at: datetime | None


def recovery_state(session: Session, tenant_id: str, now: datetime) -> RecoveryOffer | None:
    """The disaster recovery the account is offered (DESIGN §4.11), or None when there is nothing to recover."""
    subscription = session.scalar(select(Subscription).where(Subscription.tenant_id == tenant_id))
    if subscription is None:
        return None
    offer = recovery_offer(session, subscription, now)
    return offer if offer.offered else None


def drift_state(session: Session, tenant_id: str) -> DriftState | None:
    """None when there is nothing to show: no subscription, or no discrepancy ever found."""
    row = session.execute(select(SUBSCRIPTIONS.c.has_drift_detected, SUBSCRIPTIONS.c.drift_discrepancies,
                                 SUBSCRIPTIONS.c.drift_checked_at, SUBSCRIPTIONS.c.drift_acknowledged_at)
                          .where(SUBSCRIPTIONS.c.tenant_id == tenant_id)).first()
    if row is None or not (row.has_drift_detected or row.drift_discrepancies):
        return None
    return DriftState(bool(row.has_drift_detected), list(row.drift_discrepancies or []), row.drift_checked_at,
                      row.drift_acknowledged_at)

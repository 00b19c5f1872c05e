"""Reads of the ledger as operators see it: effective rows (corrections applied), NoOp hidden.

Display rule of the seed: a cancellation shows as `cancelled plan → free plan`, and a missing from-plan
as the free plan, so the transition column never shows two identical plans or a blank.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from backoffice import search
from backoffice.accounts.models import Tenant
from backoffice.billing.models import effective_billing_events
from backoffice.billing.mrr import FREE_PLAN
from backoffice.paging import Page, SortKey, fetch_page, stream_rows, with_keys

LEDGER = effective_billing_events
TENANTS = Tenant.__table__
CANCELLATIONS = ("SubscriptionCancelled", "SubscriptionImmediatelyCancelled", "SubscriptionExpired")


# The pills of the billing events page (reference §6): independent lenses, an event can match several. Ours add
# Suspended and LedgerBaseline to MRR impact: both move MRR.
LENSES: dict[str, frozenset[str]] = {
    "mrr": frozenset({"SubscriptionCreated", "SubscriptionUpgraded", "SubscriptionDowngradeScheduled",
                      "SubscriptionDowngradeCancelled", "SubscriptionDowngraded", "SubscriptionReactivated",
                      "SubscriptionCancelled", "SubscriptionExpired", "SubscriptionImmediatelyCancelled",
                      "SubscriptionSuspended", "LedgerBaseline"}),
    "state": frozenset({"SubscriptionCreated", "SubscriptionUpgraded", "SubscriptionDowngraded", "SubscriptionExpired",
                        "SubscriptionImmediatelyCancelled", "SubscriptionSuspended"}),
    "other": frozenset({"SubscriptionRenewed", "SubscriptionPastDue", "PaymentFailed", "PaymentRecovered",
                        "PaymentRefunded", "BillingInfoAdded", "BillingInfoUpdated", "PaymentMethodUpdated", "NoOp",
                        "Unclassified"}),
}
# A list of millions is counted this far past the page's start (paging.fetch_page's count_cap).
COUNT_CAP = 10_000


@dataclass(frozen=True)
class LedgerFilter:
    tenant_id: str | None = None
    search: str | None = None
    types: tuple[str, ...] = ()
    lens: str | None = None
    movements: tuple[str, ...] = ()
    since: datetime | None = None  # rows that happened at or after this moment


@dataclass(frozen=True)
class LedgerEntry:
    id: str
    tenant_id: str
    tenant_name: str
    stripe_event_id: str
    event_type: str
    from_plan: str | None
    to_plan: str | None
    amount_delta: Decimal | None
    committed_mrr: Decimal
    new_amount: Decimal | None
    currency: str | None
    occurred_at: datetime
    corrected: bool

    @property
    def transition(self) -> tuple[str, str]:
        """(from, to) as shown: cancelled plan → free plan; no from-plan reads as the free plan."""
        if self.event_type in CANCELLATIONS:
            return self.from_plan or self.to_plan or FREE_PLAN, FREE_PLAN
        return self.from_plan or FREE_PLAN, self.to_plan or self.from_plan or FREE_PLAN


def _query(criteria: LedgerFilter) -> Select:
    query = (
        select(LEDGER.c.id, LEDGER.c.tenant_id, TENANTS.c.name, LEDGER.c.stripe_event_id, LEDGER.c.event_type,
               LEDGER.c.from_plan, LEDGER.c.to_plan, LEDGER.c.amount_delta, LEDGER.c.committed_mrr,
               LEDGER.c.new_amount, LEDGER.c.currency, LEDGER.c.occurred_at, LEDGER.c.corrected)
        .select_from(LEDGER.join(TENANTS, TENANTS.c.id == LEDGER.c.tenant_id))
        .where(LEDGER.c.event_type != "NoOp")
    )
    if criteria.tenant_id is not None:
        query = query.where(LEDGER.c.tenant_id == criteria.tenant_id)
    else:
        query = query.where(TENANTS.c.deleted_at.is_(None))
    if criteria.search:
        query = query.where(search.contains(TENANTS.c.name, criteria.search))
    if criteria.types:
        query = query.where(LEDGER.c.event_type.in_(criteria.types))
    if criteria.lens is not None:
        query = query.where(LEDGER.c.event_type.in_(sorted(LENSES[criteria.lens])))
    if criteria.movements:
        query = query.where(LEDGER.c.movement.in_(criteria.movements))
    if criteria.since is not None:
        query = query.where(LEDGER.c.occurred_at >= criteria.since)
    return query


def _keys(sort: str, descending: bool) -> list[SortKey]:
    newest = [SortKey(LEDGER.c.occurred_at, True), SortKey(LEDGER.c.position, True), SortKey(LEDGER.c.id, True)]
    by_field = {
        "date": [SortKey(LEDGER.c.occurred_at, descending), SortKey(LEDGER.c.position, descending),
                 SortKey(LEDGER.c.id, descending)],
        "account": [SortKey(func.lower(TENANTS.c.name), descending), *newest],
    }
    if sort not in by_field:
        raise ValueError(f"unknown sort {sort!r}")
    return by_field[sort]


def _to_entry(row: Any) -> LedgerEntry:
    return LedgerEntry(*row[:len(LedgerEntry.__dataclass_fields__)])


def list_ledger(session: Session, criteria: LedgerFilter, *, sort: str = "date", descending: bool = True,
                page: int = 1, per_page: int = 25, after: str | None = None) -> Page[LedgerEntry]:
    """One page of ledger rows, newest first by default."""
    keys = _keys(sort, descending)
    return fetch_page(session, with_keys(_query(criteria), keys), keys, page=page, per_page=per_page, after=after,
                      to_row=_to_entry, count_cap=COUNT_CAP)


def stream_ledger(session: Session, criteria: LedgerFilter, *, sort: str = "date",
                  descending: bool = True) -> Iterator[LedgerEntry]:
    keys = _keys(sort, descending)
    return stream_rows(session, with_keys(_query(criteria), keys), keys, to_row=_to_entry)

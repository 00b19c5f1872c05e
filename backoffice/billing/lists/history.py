"""Reads of the ledger as operators see it: effective rows (corrections applied), NoOp hidden.

Plan transitions come from the ledger's own as-of state: the row's from-plan and to-plan as written. A plan
the row does not name is unknown, shown as "—" and exported empty, never guessed as the free plan; a
cancellation shows `cancelled plan → basis` because its row says so (to_plan `basis`).
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, select, text
from sqlalchemy.orm import Session

from backoffice import search
from backoffice.accounts.models import Tenant
from backoffice.billing.ledger.vocabulary import EventType
from backoffice.billing.lists.lenses import lens_predicate
from backoffice.billing.lists.lookup import Carriers, find_carriers
from backoffice.billing.models import BillingEvent, LedgerIndex, MrrDaily, effective_billing_events
from backoffice.paging import LONG_LIST_COUNT_CAP, Page, SortKey, fetch_page, stream_rows, with_keys

LEDGER = effective_billing_events
INDEX = LedgerIndex.__table__
TENANTS = Tenant.__table__
BILLING_EVENTS = BillingEvent.__table__


COUNT_CAP = LONG_LIST_COUNT_CAP


@dataclass(frozen=True)
class LedgerFilter:
    tenant_id: str | None = None
    search: str | None = None
    types: tuple[str, ...] = ()
    lens: str | None = None
    movements: tuple[str, ...] = ()
    since: datetime | None = None  # rows that happened at or after this moment
    currencies: tuple[str, ...] = ()  # rows in one of these currencies (ISO codes); none: any
    carriers: Carriers | None = None  # what the search names, when the caller has looked it up already


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
    def transition(self) -> tuple[str | None, str | None]:
        """(from, to) as the row states them; None where it names no plan."""
        return self.from_plan, self.to_plan


def _query(criteria: LedgerFilter, sort: str, carriers: Carriers | None = None) -> Select:
    """The narrow rows that find and order the ledger rows (from the read model `ledger_index`); a whole id or
    email (`carriers`) finds the rows of the events it names, or of the account it names, by equality."""
    query = select(INDEX.c.billing_event_id).where(text(f"ledger_index.event_type <> '{EventType.NO_OP}'"))
    if criteria.tenant_id is not None:
        query = query.where(INDEX.c.tenant_id == criteria.tenant_id)
    else:
        # Few accounts are deleted: one hashed list, not a join per row.
        query = query.where(INDEX.c.tenant_id.not_in(select(TENANTS.c.id).where(TENANTS.c.deleted_at.is_not(None))))
    if carriers is not None and carriers.events:
        query = query.where(INDEX.c.billing_event_id.in_(
            select(BILLING_EVENTS.c.id).where(BILLING_EVENTS.c.stripe_event_id.in_(sorted(carriers.events)))))
    elif carriers is not None:
        query = query.where(INDEX.c.tenant_id.in_(sorted(carriers.tenants)))
    elif criteria.search:
        query = query.where(INDEX.c.tenant_id.in_(select(TENANTS.c.id).where(search.contains(TENANTS.c.name,
                                                                                              criteria.search))))
    if criteria.types:
        query = query.where(INDEX.c.event_type.in_(criteria.types))
    if criteria.lens is not None:
        query = query.where(text("ledger_index." + lens_predicate(criteria.lens)))
    if criteria.movements:
        query = query.where(INDEX.c.movement.is_not(None), INDEX.c.movement.in_(criteria.movements))
    if criteria.since is not None:
        query = query.where(INDEX.c.occurred_at >= criteria.since)
    if criteria.currencies:
        query = query.where(INDEX.c.currency.in_(criteria.currencies))
    return query


def currencies_ledgered(session: Session) -> list[str]:
    """The currencies the ledger holds rows in (the currency filter's choices), from the MRR rollup's few rows."""
    return sorted(session.scalars(select(MrrDaily.currency).distinct()))


def _keys(sort: str, descending: bool) -> list[SortKey]:
    newest = [SortKey(INDEX.c.occurred_at, True), SortKey(INDEX.c.position, True), SortKey(INDEX.c.billing_event_id, True)]
    by_field = {
        "date": [SortKey(INDEX.c.occurred_at, descending), SortKey(INDEX.c.position, descending),
                 SortKey(INDEX.c.billing_event_id, descending)],
        "account": [SortKey(INDEX.c.account_key, descending), *newest],
    }
    if sort not in by_field:
        raise ValueError(f"unknown sort {sort!r}")
    return by_field[sort]


def _hydrate(session: Session) -> Any:
    """Read a page's full rows (effective values, the account's name) by id, in the page's order."""
    def full(narrow: list[Any]) -> list[Any]:
        ids = [row[0] for row in narrow]
        found = {row.id: row for row in session.execute(
            select(LEDGER.c.id, LEDGER.c.tenant_id, TENANTS.c.name, LEDGER.c.stripe_event_id, LEDGER.c.event_type,
                   LEDGER.c.from_plan, LEDGER.c.to_plan, LEDGER.c.amount_delta, LEDGER.c.committed_mrr,
                   LEDGER.c.new_amount, LEDGER.c.currency, LEDGER.c.occurred_at, LEDGER.c.corrected)
            .join(TENANTS, TENANTS.c.id == LEDGER.c.tenant_id).where(LEDGER.c.id.in_(ids)))}
        return [found[event_id] for event_id in ids]
    return full


def _to_entry(row: Any) -> LedgerEntry:
    return LedgerEntry(*row[:len(LedgerEntry.__dataclass_fields__)])


def list_ledger(session: Session, criteria: LedgerFilter, *, sort: str = "date", descending: bool = True,
                page: int = 1, per_page: int = 25, after: str | None = None) -> Page[LedgerEntry]:
    """One page of ledger rows, newest first by default."""
    keys = _keys(sort, descending)
    carriers = find_carriers(session, criteria.search, criteria.carriers)
    return fetch_page(session, with_keys(_query(criteria, sort, carriers), keys), keys, page=page, per_page=per_page,
                      after=after, to_row=_to_entry, hydrate=_hydrate(session), count_limit=COUNT_CAP)


def stream_ledger(session: Session, criteria: LedgerFilter, *, sort: str = "date",
                  descending: bool = True) -> Iterator[LedgerEntry]:
    keys = _keys(sort, descending)
    carriers = find_carriers(session, criteria.search, criteria.carriers)
    return stream_rows(session, with_keys(_query(criteria, sort, carriers), keys), keys, to_row=_to_entry,
                       hydrate=_hydrate(session))

"""The shell's global search: the first few accounts, users, billing events and invoices that match, by kind.

Each group is the first page of its own list with the same search, so a group and its "see all" list agree row
for row: a whole id or email is an equality there (`billing.lists.lookup`), a fragment matches names.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from backoffice.accounts import people
from backoffice.billing.lists import history, invoices
from backoffice.billing.lists.lookup import find_carriers
from backoffice.paging import Page
from backoffice.read import account_list

GROUP_SIZE = 5
# One character matches nearly everything and no trigram index serves it.
MIN_LENGTH = 2


class Kind(StrEnum):
    ACCOUNTS = "accounts"
    USERS = "users"
    BILLING_EVENTS = "billing_events"
    INVOICES = "invoices"


@dataclass(frozen=True)
class Group:
    """The first rows of one list (AccountRow, UserRow, LedgerEntry or InvoiceRow, by kind) and how many match."""

    kind: Kind
    rows: list[Any]
    total: int
    total_capped: bool

    @property
    def more(self) -> bool:
        """More rows match than the group shows."""
        return self.total_capped or self.total > len(self.rows)


@dataclass(frozen=True)
class Results:
    query: str | None
    groups: list[Group]

    @property
    def empty(self) -> bool:
        return all(not group.rows for group in self.groups)


def _group(kind: Kind, page: Page[Any]) -> Group:
    return Group(kind, page.rows, page.total, page.total_capped)


def search_everything(session: Session, text: str | None, *, plan_order: Sequence[str], billing: bool,
                      now: datetime, limit: int = GROUP_SIZE) -> Results:
    """The first `limit` rows of each list the search finds, grouped by kind; billing lists only while billing is
    public. `text` is a normalized search (`search.normalize`); shorter than MIN_LENGTH searches nothing."""
    if text is None or len(text) < MIN_LENGTH:
        return Results(None, [])
    # Looked up once for the three lists that narrow by it.
    carriers = find_carriers(session, text)
    groups = [
        _group(Kind.ACCOUNTS, account_list.list_accounts(
            session, account_list.AccountFilter(search=text, carriers=carriers), per_page=limit, plan_order=plan_order)),
        _group(Kind.USERS, people.list_users(
            session, people.UserFilter(search=text, now=now, accounts=carriers.whole_accounts if carriers else frozenset()),
            sort="name", descending=False, per_page=limit)),
    ]
    if billing:
        groups.append(_group(Kind.BILLING_EVENTS, history.list_ledger(
            session, history.LedgerFilter(search=text, carriers=carriers), per_page=limit)))
        groups.append(_group(Kind.INVOICES, invoices.list_invoice_rows(
            session, invoices.InvoiceFilter(search=text, carriers=carriers), per_page=limit)))
    return Results(text, groups)

"""Reads of one account's people: its members, their counts, owners and most recent visitors.

Soft-deleted users never appear. The account overview (backoffice.read) shows these beside the account's
billing; the account's Users tab lists them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from backoffice import search
from backoffice.accounts.models import User
from backoffice.accounts.names import Named
from backoffice.accounts.people import user_sort_keys
from backoffice.paging import Page, SortKey, fetch_page, with_keys

USERS = User.__table__

# A member is active when confirmed and seen within this window (the seed's tenant user counts).
ACTIVE_WINDOW = timedelta(days=30)


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

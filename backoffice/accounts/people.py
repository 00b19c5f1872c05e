"""Reads of people across accounts: the users list, a person's memberships, logins and sessions.

A person is every live user row sharing an email, matched case-insensitively. Soft-deleted users and the
users of soft-deleted tenants never appear. Sort keys and search expressions are written as literal SQL so
that they are the very expressions the indexes of migration 0008 are built on.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    DateTime,
    Integer,
    Select,
    Text,
    and_,
    any_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import Session

from backoffice import search
from backoffice.accounts.devices import Device, parse_device
from backoffice.accounts.models import (
    NAME_KEY_SQL,
    ROLE_RANK_SQL,
    SEEN_ASC_SQL,
    SEEN_DESC_SQL,
    Login,
    Tenant,
    User,
    UserSession,
)
from backoffice.accounts.names import Named
from backoffice.paging import Page, SortKey, fetch_page, stream_rows, with_keys

USERS = User.__table__
TENANTS = Tenant.__table__
LOGINS = Login.__table__
SESSIONS = UserSession.__table__

USER_SORTS = ("name", "email", "role", "last_seen", "created")
ACTIVITIES = ("24h", "7d", "30d", "90d", "inactive")
# "Nd" is the last N UTC days including today, as the dashboard's periods count active users (by UTC day in the
# user_seen_daily rollup), so that its tile and the list it opens hold the same users.
ACTIVITY_DAYS = {"7d": 7, "30d": 30, "90d": 90}
ACTIVITY_WINDOWS = {"24h": timedelta(hours=24), **{name: timedelta(days=days) for name, days in ACTIVITY_DAYS.items()}}
# Inactive: not seen for longer than this, or never seen.
INACTIVE_AFTER = timedelta(days=30)
RECENT_LOGINS = timedelta(days=30)
# The list counts its matches up to this many ("more than 1,000"): counting a million rows costs more than
# the page itself many times over, and nobody pages through them (the search and filters narrow them).
COUNT_LIMIT = 1_000
# A search sorts its matches when there are at most this many, and walks the list's order otherwise.
SEARCH_SORT_LIMIT = 2_000

# Sort and search by the very expressions the indexes are built on (models.NAME_KEY_SQL), so the planner matches them.
NAME_KEY = literal_column(NAME_KEY_SQL.format(t="users."), Text)
ROLE_RANK = literal_column(ROLE_RANK_SQL.format(t="users."), Integer)
SEEN_DESC = literal_column(SEEN_DESC_SQL.format(t="users."), DateTime)
SEEN_ASC = literal_column(SEEN_ASC_SQL.format(t="users."), DateTime)
# Typed, so that a cursor's value is checked against text (backoffice.paging); lower() says no type of its own.
EMAIL_KEY = func.lower(USERS.c.email, type_=Text)
LOGIN_EMAIL_KEY = func.lower(LOGINS.c.email, type_=Text)


def user_sort_keys(sort: str, descending: bool) -> list[SortKey]:
    """The order of a users list: the field, then ties, all in one direction (an index serves both ways, and a
    cursor is one row comparison); last seen keeps the never-seen last both ways (a key of its own each way)."""
    def keys(*expressions: ColumnElement[Any]) -> list[SortKey]:
        return [SortKey(expression, descending) for expression in expressions]

    by_field: dict[str, list[SortKey]] = {
        "name": keys(NAME_KEY, EMAIL_KEY, USERS.c.id),
        "email": keys(EMAIL_KEY, USERS.c.id),
        "role": keys(ROLE_RANK, NAME_KEY, EMAIL_KEY, USERS.c.id),
        "last_seen": keys(SEEN_DESC if descending else SEEN_ASC, EMAIL_KEY, USERS.c.id),
        "created": keys(USERS.c.created_at, USERS.c.id),
    }
    if sort not in by_field:
        raise ValueError(f"unknown sort {sort!r}")
    return by_field[sort]


@dataclass(frozen=True)
class UserFilter:
    """What the users list is narrowed to: OR within roles and within activities, AND across."""

    search: str | None = None
    roles: tuple[str, ...] = ()
    activities: tuple[str, ...] = ()
    now: datetime | None = None
    # The accounts a pasted Stripe id names, looked up by the caller (billing.lists.lookup: accounts knows no billing).
    accounts: frozenset[str] = frozenset()


@dataclass(frozen=True)
class UserRow(Named):
    """One user row of the list, with its account."""

    id: str
    email: str
    first_name: str | None
    last_name: str | None
    role: str
    last_seen_at: datetime | None
    created_at: datetime
    avatar: str | None
    email_confirmed: bool
    tenant_id: str
    tenant_name: str


_USER_COLUMNS = (USERS.c.id, USERS.c.email, USERS.c.first_name, USERS.c.last_name, USERS.c.role, USERS.c.last_seen_at,
                 USERS.c.created_at, USERS.c.avatar, USERS.c.email_confirmed, USERS.c.tenant_id)


def _live_users() -> Select:
    return (select(*_USER_COLUMNS, TENANTS.c.name.label("tenant_name"))
            .select_from(USERS.join(TENANTS, TENANTS.c.id == USERS.c.tenant_id))
            .where(USERS.c.deleted_at.is_(None), TENANTS.c.deleted_at.is_(None)))


def _users_among(ids: list[str]) -> Select:
    """The users named, all of live accounts already: their account's name is a subquery, which PostgreSQL reads
    after sorting and limiting, so only for the page's rows (a join would read it for every one of them)."""
    among = select(func.unnest(bindparam("found_users", ids, type_=ARRAY(Text)))).scalar_subquery()
    account = select(TENANTS.c.name).where(TENANTS.c.id == USERS.c.tenant_id).scalar_subquery()
    return select(*_USER_COLUMNS, account.label("tenant_name")).where(USERS.c.id.in_(among))


def _to_user(row: Any) -> UserRow:
    return UserRow(*row[:len(UserRow.__dataclass_fields__)])


def _utc(moment: datetime) -> datetime:
    """A moment as the seen keys hold it: UTC without a zone."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def activity_since(activity: str, now: datetime) -> datetime:
    """The earliest moment a user may have been seen to count as active for `activity` ("24h", "7d", …)."""
    if activity in ACTIVITY_DAYS:
        first = now.astimezone(UTC).date() - timedelta(days=ACTIVITY_DAYS[activity] - 1)
        return datetime(first.year, first.month, first.day, tzinfo=UTC)
    return now - ACTIVITY_WINDOWS[activity]


def _activity(activity: str, now: datetime, descending: bool) -> ColumnElement[bool]:
    """The activity as a range of the seen key the list walks (never seen is its earliest or latest moment)."""
    if descending:
        if activity == "inactive":
            return SEEN_DESC < _utc(now - INACTIVE_AFTER)
        return SEEN_DESC >= _utc(activity_since(activity, now))
    never = _utc(datetime(9999, 12, 31, tzinfo=UTC))  # never seen, in the ascending key
    if activity == "inactive":
        return or_(SEEN_ASC < _utc(now - INACTIVE_AFTER), SEEN_ASC == never)
    return and_(SEEN_ASC >= _utc(activity_since(activity, now)), SEEN_ASC < never)


def _narrowing(criteria: UserFilter, seen_descending: bool) -> list[ColumnElement[bool]]:
    """The role and activity filters, on the users table alone."""
    conditions: list[ColumnElement[bool]] = [USERS.c.deleted_at.is_(None)]
    if criteria.roles:
        conditions.append(USERS.c.role.in_(criteria.roles))
    if criteria.activities:
        if criteria.now is None:
            raise ValueError("an activity filter needs the moment it is measured from")
        conditions.append(or_(*(_activity(activity, criteria.now, seen_descending)
                                for activity in criteria.activities)))
    return conditions


def _search(session: Session, text: str, narrowing: list[ColumnElement[bool]],
            named_accounts: frozenset[str] = frozenset()) -> tuple[Select, int]:
    """The list's query for the users of live accounts whose email, name ("first last") or account name contains
    the text, and how many they are (up to SEARCH_SORT_LIMIT + 1).

    The matches are first found in one pass: the trigram indexes of email and name and the accounts' users by
    their account, OR-ed into one bitmap, the deleted accounts' users left out. When there are
    few, the list sorts exactly those (named by one array, its count known); when there are many, it walks its
    order's index and tests each row instead, which finds a page of frequent matches long before it would have
    read them all.
    """
    # An address (it has an @) is looked up by its start: trigrams every address shares (a common domain) would
    # make a contains-search read most of the trigram index. An address never holds a space.
    if "@" in text:
        in_email = [search.starts_with(EMAIL_KEY, text)]
    else:
        in_email = [] if any(character.isspace() for character in text) else [search.contains(USERS.c.email, text)]
    in_name = or_(*in_email, search.contains(NAME_KEY, text))
    # The accounts' ids as one array: the users of those accounts are then an index condition, in the same bitmap.
    accounts = func.array(select(TENANTS.c.id).where(search.contains(TENANTS.c.name, text)).scalar_subquery())
    in_account = USERS.c.tenant_id == any_(accounts)
    # A hashed list of the few deleted accounts (an index of their own): a join per match would cost more.
    deleted_accounts = select(TENANTS.c.id).where(TENANTS.c.deleted_at.is_not(None))
    if search.looks_like_id(text):
        # A pasted user or account id is an equality on a key, never a fragment of a name; a Stripe id finds the
        # users of the account it names.
        matches = or_(USERS.c.id == text, USERS.c.tenant_id.in_(sorted(named_accounts | {text})))
    else:
        matches = or_(in_name, in_account)
    found = list(session.scalars(select(USERS.c.id).where(matches, USERS.c.tenant_id.not_in(deleted_accounts),
                                                          *narrowing).limit(SEARCH_SORT_LIMIT + 1)))
    if len(found) <= SEARCH_SORT_LIMIT:
        # As a set to join by primary key: as `= ANY(array)` the planner would rather walk the order's index
        # and test each row against the array (20,000 rows read for a page of 1,000 matches).
        return _users_among(found), len(found)
    return _live_users().where(matches, *narrowing), len(found)


def _filtered(session: Session, criteria: UserFilter, sort: str, descending: bool) -> tuple[Select, int | None]:
    """The list's query, and the number of matches when a search has counted them already."""
    narrowing = _narrowing(criteria, seen_descending=descending or sort != "last_seen")
    if not criteria.search:
        return _live_users().where(*narrowing), None
    query, found = _search(session, criteria.search, narrowing, criteria.accounts)
    # Up to SEARCH_SORT_LIMIT the count is exact; past it, it is a bound, which names the total when that is
    # past COUNT_LIMIT too.
    return query, (found if found <= SEARCH_SORT_LIMIT or found > COUNT_LIMIT else None)


def list_users(session: Session, criteria: UserFilter, *, sort: str = "last_seen", descending: bool = True,
               page: int = 1, per_page: int = 25, after: str | None = None) -> Page[UserRow]:
    """One page of the users of every live account, with the count of the rows that match (up to COUNT_LIMIT)."""
    keys = user_sort_keys(sort, descending)
    query, found = _filtered(session, criteria, sort, descending)
    return fetch_page(session, with_keys(query, keys), keys, page=page, per_page=per_page, after=after,
                      to_row=_to_user, count_limit=COUNT_LIMIT, known_total=found)


def stream_users(session: Session, criteria: UserFilter, *, sort: str = "last_seen",
                 descending: bool = True) -> Iterator[UserRow]:
    """Every matching user in the list's order, read in keyset chunks (the CSV export)."""
    keys = user_sort_keys(sort, descending)
    query, _ = _filtered(session, criteria, sort, descending)
    return stream_rows(session, with_keys(query, keys), keys, to_row=_to_user)


# One person.

@dataclass(frozen=True)
class Person(Named):
    """A person as the detail header and the pane show them: the named user row, all their memberships."""

    id: str
    email: str
    first_name: str | None
    last_name: str | None
    avatar: str | None
    memberships: list[UserRow]
    active_sessions: int
    recent_logins: int

    @property
    def last_seen_at(self) -> datetime | None:
        """The latest moment any of the person's memberships was seen."""
        return max((m.last_seen_at for m in self.memberships if m.last_seen_at is not None), default=None)

    @property
    def user_ids(self) -> list[str]:
        return [membership.id for membership in self.memberships]


def get_person(session: Session, user_id: str, now: datetime) -> Person | None:
    """The person of a live user row: every live membership with the same email (any case), their active
    sessions and their logins in the last 30 days; None for an unknown or deleted user."""
    named = session.execute(_live_users().where(USERS.c.id == user_id)).first()
    if named is None:
        return None
    email_key = named.email.lower()
    memberships = [_to_user(row) for row in session.execute(
        _live_users().where(EMAIL_KEY == email_key).order_by(func.lower(TENANTS.c.name), USERS.c.id))]
    ids = [membership.id for membership in memberships]
    active = session.scalar(select(func.count()).where(SESSIONS.c.user_id.in_(ids), SESSIONS.c.revoked_at.is_(None)))
    logins = session.scalar(select(func.count()).where(LOGIN_EMAIL_KEY == email_key,
                                                       LOGINS.c.created_at >= now - RECENT_LOGINS))
    avatar = named.avatar or next((m.avatar for m in memberships if m.avatar), None)
    return Person(id=named.id, email=named.email, first_name=named.first_name, last_name=named.last_name,
                  avatar=avatar, memberships=memberships, active_sessions=active or 0, recent_logins=logins or 0)


class WithDevice:
    """A row with a user_agent gets the device it names."""

    user_agent: str | None

    @property
    def device(self) -> Device:
        return parse_device(self.user_agent)


@dataclass(frozen=True)
class LoginRow(WithDevice):
    id: str
    method: str
    outcome: str
    ip_address: str | None
    user_agent: str | None
    created_at: datetime


LOGIN_KEYS = [SortKey(LOGINS.c.created_at, True), SortKey(LOGINS.c.id, True)]


def list_logins(session: Session, email: str, *, since: datetime | None = None, page: int = 1, per_page: int = 25,
                after: str | None = None) -> Page[LoginRow]:
    """A page of the sign-ins with this email (any case, known user or not), newest first."""
    query = select(LOGINS.c.id, LOGINS.c.method, LOGINS.c.outcome, LOGINS.c.ip_address, LOGINS.c.user_agent,
                   LOGINS.c.created_at).where(LOGIN_EMAIL_KEY == email.lower())
    if since is not None:
        query = query.where(LOGINS.c.created_at >= since)
    return fetch_page(session, with_keys(query, LOGIN_KEYS), LOGIN_KEYS, page=page, per_page=per_page, after=after,
                      to_row=lambda row: LoginRow(*row[:6]))


@dataclass(frozen=True)
class SessionRow(WithDevice):
    id: str
    tenant_id: str
    tenant_name: str
    created_at: datetime
    last_active_at: datetime | None
    login_method: str
    ip_address: str | None
    user_agent: str | None
    revoked_at: datetime | None
    revoked_reason: str | None


SESSION_KEYS = [SortKey(SESSIONS.c.revoked_at.is_not(None)), SortKey(SESSIONS.c.created_at, True),
                SortKey(SESSIONS.c.id, True)]


def list_sessions(session: Session, user_ids: Sequence[str], *, page: int = 1, per_page: int = 25,
                  after: str | None = None) -> Page[SessionRow]:
    """A page of the sessions of these user rows (a person's, across tenants): active first, newest first."""
    query = (select(SESSIONS.c.id, SESSIONS.c.tenant_id, TENANTS.c.name, SESSIONS.c.created_at,
                    SESSIONS.c.last_active_at, SESSIONS.c.login_method, SESSIONS.c.ip_address, SESSIONS.c.user_agent,
                    SESSIONS.c.revoked_at, SESSIONS.c.revoked_reason)
             .select_from(SESSIONS.join(TENANTS, TENANTS.c.id == SESSIONS.c.tenant_id))
             .where(SESSIONS.c.user_id.in_(list(user_ids))))
    return fetch_page(session, with_keys(query, SESSION_KEYS), SESSION_KEYS, page=page, per_page=per_page,
                      after=after, to_row=lambda row: SessionRow(*row[:10]))

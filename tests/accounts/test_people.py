"""People across accounts on PostgreSQL: the users list (the seed's GetBackOfficeUsersTests), a person's detail,
login history and sessions across tenants (…UserDetailTests, …UserLoginHistoryTests, …UserSessionsTests)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backoffice.accounts import people
from backoffice.accounts.models import Login, User, UserSession
from backoffice.paging import BadCursor, PageOutOfRange
from tests.factories import make_tenant

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def user(session, key, tenant, email, *, first=None, last=None, role="member", seen=None, created_days=10, **more):
    session.add(User(id=f"usr_{key}", tenant_id=tenant.id, email=email, first_name=first, last_name=last, role=role,
                     email_confirmed=True, last_seen_at=seen, created_at=NOW - timedelta(days=created_days), **more))


@pytest.fixture
def dataset(db_session):
    """Five live users in two accounts (one person in both, in two casings of one email), and the hidden."""
    s = db_session
    aurora = make_tenant(s, name="Aurora Analytics")
    birch = make_tenant(s, name="Birch & Co")
    gone = make_tenant(s, name="Gone Tenant", deleted_at=NOW - timedelta(days=1))
    user(s, "1", aurora, "ann@aurora.example", first="Ann", last="Lee", role="owner", seen=NOW - timedelta(hours=1),
         created_days=100)
    user(s, "2", aurora, "bob@aurora.example", first="Bob", role="admin", seen=NOW - timedelta(days=3), created_days=90)
    user(s, "3", birch, "Ann@Aurora.example", first="Ann", last="Lee", seen=NOW - timedelta(days=10), created_days=20)
    user(s, "4", birch, "zed@birch.example", created_days=5)  # no names, never seen
    user(s, "5", birch, "a.moss@birch.example", last="Moss", seen=NOW - timedelta(days=40), created_days=200)
    user(s, "deleted", aurora, "del@aurora.example", first="Del", seen=NOW, deleted_at=NOW - timedelta(days=2))
    user(s, "ghost", gone, "ghost@gone.example", first="Ghost", seen=NOW)
    s.flush()
    return s


def keys(page) -> list[str]:
    return [row.id.removeprefix("usr_") for row in page.rows]


def listing(session, **criteria_and_options):
    options = {name: criteria_and_options.pop(name) for name in ("sort", "descending", "page", "per_page", "after")
               if name in criteria_and_options}
    return people.list_users(session, people.UserFilter(now=NOW, **criteria_and_options), **options)


def test_default_order_is_last_seen_newest_first_never_seen_last_and_hidden_users_never_show(dataset):
    page = listing(dataset)
    assert keys(page) == ["1", "2", "3", "5", "4"] and page.total == 5


def test_rows_carry_their_account_and_display_name(dataset):
    rows = {row.id: row for row in listing(dataset).rows}
    assert (rows["usr_1"].tenant_name, rows["usr_1"].display_name) == ("Aurora Analytics", "Ann Lee")
    assert (rows["usr_2"].display_name, rows["usr_5"].display_name, rows["usr_4"].display_name) == (
        "Bob", "Moss", "zed@birch.example")


@pytest.mark.parametrize("text, expected", [
    ("ann@aur", ["1", "3"]),  # email, any case
    ("lee", ["1", "3"]),  # last name
    ("bob", ["2"]),  # first name
    ("ann lee", ["1", "3"]),  # "first last"
    ("moss", ["5"]),  # only a last name
    ("birch", ["3", "5", "4"]),  # account name (and emails at birch)
    ("analytics", ["1", "2"]),  # account name only
    ("gone", []),  # users of a deleted account
    ("del@", []),  # a deleted user
    ("zzz", []),
])
def test_search_by_email_names_and_account(dataset, text, expected):
    assert keys(listing(dataset, search=text)) == expected


def test_like_wildcards_in_the_search_are_literal(dataset):
    tenant = make_tenant(dataset, name="100% Lab")
    user(dataset, "pct", tenant, "x_y@lab.example", seen=NOW)
    user(dataset, "plain", tenant, "xzy@lab.example", seen=NOW - timedelta(minutes=1))
    dataset.flush()
    assert keys(listing(dataset, search="x_y")) == ["pct"]
    assert keys(listing(dataset, search="100%")) == ["pct", "plain"]


@pytest.mark.parametrize("roles, expected", [
    (("owner",), ["1"]), (("owner", "admin"), ["1", "2"]), (("member",), ["3", "5", "4"]),
])
def test_role_filter_is_or_within(dataset, roles, expected):
    assert keys(listing(dataset, roles=roles)) == expected


@pytest.mark.parametrize("activities, expected", [
    (("24h",), ["1"]),
    (("7d",), ["1", "2"]),
    (("30d",), ["1", "2", "3"]),
    (("inactive",), ["5", "4"]),  # over 30 days ago, or never seen
    (("24h", "inactive"), ["1", "5", "4"]),
])
def test_activity_filter(dataset, activities, expected):
    assert keys(listing(dataset, activities=activities)) == expected


def test_filters_combine_with_and_across(dataset):
    assert keys(listing(dataset, roles=("member",), activities=("30d",))) == ["3"]
    assert keys(listing(dataset, search="aurora", roles=("admin", "member"))) == ["2", "3"]


def test_an_activity_filter_needs_a_moment():
    with pytest.raises(ValueError):
        people.list_users(None, people.UserFilter(activities=("7d",)))


@pytest.mark.parametrize("sort, ascending, descending", [
    ("name", ["1", "3", "2", "5", "4"], ["4", "5", "2", "3", "1"]),  # by display name, the email when no name
    ("email", ["5", "1", "3", "2", "4"], ["4", "2", "3", "1", "5"]),
    ("role", ["1", "2", "3", "5", "4"], ["4", "5", "3", "2", "1"]),
    ("last_seen", ["5", "3", "2", "1", "4"], ["1", "2", "3", "5", "4"]),  # never seen last both ways
    ("created", ["5", "1", "2", "3", "4"], ["4", "3", "2", "1", "5"]),
])
def test_each_sort_both_directions(dataset, sort, ascending, descending):
    assert keys(listing(dataset, sort=sort, descending=False)) == ascending
    assert keys(listing(dataset, sort=sort, descending=True)) == descending


def test_cursor_pages_equal_offset_pages_in_every_sort(dataset):
    for sort in people.USER_SORTS:
        for descending in (False, True):
            everything = keys(listing(dataset, sort=sort, descending=descending, per_page=100))
            by_cursor, by_offset, cursor = [], [], None
            for number in range(1, 4):
                by_offset += keys(listing(dataset, sort=sort, descending=descending, per_page=2, page=number))
                page = listing(dataset, sort=sort, descending=descending, per_page=2, page=number, after=cursor)
                by_cursor += keys(page)
                cursor = page.next_cursor
            assert by_cursor == by_offset == everything, (sort, descending)
            streamed = people.stream_users(dataset, people.UserFilter(now=NOW), sort=sort, descending=descending)
            assert [row.id.removeprefix("usr_") for row in streamed] == everything


def test_pages_and_bounds(dataset):
    assert (keys(listing(dataset, per_page=2, page=3)), listing(dataset, per_page=2).pages) == (["4"], 3)
    with pytest.raises(PageOutOfRange):
        listing(dataset, per_page=2, page=4)
    with pytest.raises(PageOutOfRange):
        listing(dataset, search="ann", per_page=2, page=2)
    with pytest.raises(BadCursor):
        listing(dataset, after="bm90IGEgY3Vyc29y")
    assert listing(dataset, search="nobody").total == 0


# One person: detail, logins, sessions.

def login(session, key, email, at, *, outcome="succeeded", user_id=None, agent=None):
    session.add(Login(id=f"lgn_{key}", user_id=user_id, email=email, method="google", outcome=outcome,
                      ip_address="192.0.2.7", user_agent=agent, created_at=at))


def user_session(session, key, user_id, tenant_id, at, *, revoked=None, reason=None):
    session.add(UserSession(id=f"ses_{key}", user_id=user_id, tenant_id=tenant_id, created_at=at, last_active_at=at,
                            login_method="one_time_password", ip_address="198.51.100.1", revoked_at=revoked,
                            revoked_reason=reason))


@pytest.fixture
def person_data(dataset):
    s = dataset
    login(s, "recent", "ann@aurora.example", NOW - timedelta(days=1), user_id="usr_1")
    login(s, "other-case", "ANN@AURORA.EXAMPLE", NOW - timedelta(days=2), outcome="failed")  # no user matched
    login(s, "old", "ann@aurora.example", NOW - timedelta(days=40), user_id="usr_1")
    login(s, "bob", "bob@aurora.example", NOW - timedelta(days=1), user_id="usr_2")
    tenants = {row.id: row.tenant_id for row in s.query(User).all()}
    user_session(s, "a-new", "usr_1", tenants["usr_1"], NOW - timedelta(days=1))
    user_session(s, "b-old", "usr_3", tenants["usr_3"], NOW - timedelta(days=9))
    user_session(s, "b-gone", "usr_3", tenants["usr_3"], NOW - timedelta(days=5), revoked=NOW - timedelta(days=4),
                 reason="logged_out")
    user_session(s, "bob", "usr_2", tenants["usr_2"], NOW - timedelta(days=1))
    s.flush()
    return s


def test_a_person_is_every_live_membership_of_the_email_in_any_case(person_data):
    person = people.get_person(person_data, "usr_3", NOW)
    assert [m.tenant_name for m in person.memberships] == ["Aurora Analytics", "Birch & Co"]
    assert person.user_ids == ["usr_1", "usr_3"]
    assert (person.display_name, person.email, person.last_seen_at) == ("Ann Lee", "Ann@Aurora.example",
                                                                        NOW - timedelta(hours=1))
    assert (person.active_sessions, person.recent_logins) == (2, 2)


def test_unknown_deleted_and_deleted_tenant_users_have_no_page(person_data):
    assert people.get_person(person_data, "usr_nobody", NOW) is None
    assert people.get_person(person_data, "usr_deleted", NOW) is None
    assert people.get_person(person_data, "usr_ghost", NOW) is None


def test_a_person_never_seen_without_names(person_data):
    person = people.get_person(person_data, "usr_4", NOW)
    assert (person.display_name, person.initials, person.last_seen_at, person.active_sessions) == (
        "zed@birch.example", "Z", None, 0)


def test_login_history_of_the_last_30_days_leaves_older_out(person_data):
    recent = people.list_logins(person_data, "Ann@Aurora.example", since=NOW - people.RECENT_LOGINS)
    assert [row.id for row in recent.rows] == ["lgn_recent", "lgn_other-case"]
    assert [row.outcome for row in recent.rows] == ["succeeded", "failed"]


def test_full_login_history_is_paged_newest_first(person_data):
    everything = people.list_logins(person_data, "ann@aurora.example")
    assert [row.id for row in everything.rows] == ["lgn_recent", "lgn_other-case", "lgn_old"]
    first = people.list_logins(person_data, "ann@aurora.example", per_page=2)
    by_cursor = people.list_logins(person_data, "ann@aurora.example", per_page=2, page=2, after=first.next_cursor)
    by_offset = people.list_logins(person_data, "ann@aurora.example", per_page=2, page=2)
    assert [row.id for row in by_cursor.rows] == [row.id for row in by_offset.rows] == ["lgn_old"]


def test_sessions_across_tenants_active_first_then_revoked(person_data):
    person = people.get_person(person_data, "usr_1", NOW)
    page = people.list_sessions(person_data, person.user_ids)
    assert [row.id for row in page.rows] == ["ses_a-new", "ses_b-old", "ses_b-gone"]
    assert [row.tenant_name for row in page.rows] == ["Aurora Analytics", "Birch & Co", "Birch & Co"]
    assert (page.rows[2].revoked_reason, page.rows[0].revoked_at) == ("logged_out", None)
    second = people.list_sessions(person_data, person.user_ids, per_page=2, page=2,
                                  after=people.list_sessions(person_data, person.user_ids, per_page=2).next_cursor)
    assert [row.id for row in second.rows] == ["ses_b-gone"]


def test_login_rows_know_their_device(person_data):
    login(person_data, "phone", "bob@aurora.example", NOW, agent=(
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 "
        "Mobile Safari/537.36"))
    person_data.flush()
    row = people.list_logins(person_data, "bob@aurora.example").rows[0]
    assert (row.device.kind, row.device.os) == ("phone", "Android 14")


def test_a_large_list_is_counted_up_to_the_limit_and_still_pages_to_its_end(dataset, monkeypatch):
    monkeypatch.setattr(people, "COUNT_LIMIT", 3)
    first = listing(dataset, per_page=2)
    assert (first.total, first.total_capped, first.pages, first.has_next) == (3, True, 2, True)
    third = listing(dataset, per_page=2, page=3)
    assert (keys(third), third.has_next, third.next_cursor) == (["4"], False, None)
    by_cursor = listing(dataset, per_page=2, page=3, after=listing(dataset, per_page=2, page=2).next_cursor)
    assert keys(by_cursor) == ["4"]
    with pytest.raises(PageOutOfRange) as error:
        listing(dataset, per_page=2, page=4)
    assert error.value.pages == 3
    narrow = listing(dataset, roles=("owner", "admin"), per_page=2)
    assert (narrow.total, narrow.total_capped, narrow.has_next) == (2, False, False)


@pytest.mark.parametrize("text, expected", [("birch", ["3", "5", "4"]), ("ann", ["1", "3"]), ("zzz", [])])
def test_a_search_with_many_matches_walks_the_order_and_finds_the_same(dataset, monkeypatch, text, expected):
    monkeypatch.setattr(people, "SEARCH_SORT_LIMIT", 1)
    for sort in people.USER_SORTS:
        for descending in (False, True):
            sorted_matches = keys(listing(dataset, search=text, sort=sort, descending=descending))
            monkeypatch.setattr(people, "SEARCH_SORT_LIMIT", 100)
            assert keys(listing(dataset, search=text, sort=sort, descending=descending)) == sorted_matches
            monkeypatch.setattr(people, "SEARCH_SORT_LIMIT", 1)
    assert keys(listing(dataset, search=text)) == expected
    assert listing(dataset, search=text).total == len(expected)


def test_an_address_is_found_by_its_start(dataset):
    assert keys(listing(dataset, search="ann@aurora.example")) == ["1", "3"]
    assert keys(listing(dataset, search="a.moss@bir")) == ["5"]
    assert keys(listing(dataset, search="moss@birch.example")) == []  # not the start of an address
    assert keys(listing(dataset, search="moss")) == ["5"]

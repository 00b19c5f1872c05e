"""One account's people on PostgreSQL: counts, owners, recent members, the Users tab's search and roles."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backoffice.accounts import members as queries
from tests.factories import make_tenant

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_user_counts_and_people(db_session):
    from backoffice.accounts.models import User

    tenant = make_tenant(db_session, name="People")
    now = datetime.now(UTC)
    rows = [("owner", True, now - timedelta(days=1)), ("member", True, now - timedelta(days=31)),
            ("member", False, None), ("admin", True, now - timedelta(days=29))]
    for index, (role, confirmed, seen) in enumerate(rows):
        db_session.add(User(id=f"usr_{tenant.id}_{index}", tenant_id=tenant.id, email=f"p{index}@x.example",
                            role=role, email_confirmed=confirmed, last_seen_at=seen, first_name=None if index else "Ann"))
    db_session.add(User(id=f"usr_{tenant.id}_gone", tenant_id=tenant.id, email="gone@x.example", role="owner",
                        email_confirmed=True, last_seen_at=now, deleted_at=now))
    db_session.flush()
    counts = queries.user_counts(db_session, tenant.id, now)
    assert (counts.total, counts.active, counts.pending, counts.inactive) == (4, 2, 1, 1)
    assert [owner.display_name for owner in queries.owners(db_session, tenant.id)] == ["Ann"]
    assert [m.email for m in queries.recent_members(db_session, tenant.id)] == ["p0@x.example", "p3@x.example",
                                                                                  "p1@x.example"]
    members = queries.list_members(db_session, tenant.id, queries.MemberFilter(roles=("member",)), sort="email")
    assert [m.email for m in members.rows] == ["p1@x.example", "p2@x.example"]
    found = queries.list_members(db_session, tenant.id, queries.MemberFilter(search="ann"))
    assert [m.email for m in found.rows] == ["p0@x.example"]


@pytest.mark.parametrize("first, last, email, shown, initials", [
    ("Ann", "Lee", "a@x", "Ann Lee", "AL"), ("Ann", None, "a@x", "Ann", "A"), (None, "Lee", "a@x", "Lee", "L"),
    (None, None, "zed@x", "zed@x", "Z"), ("  ", "", "q@x", "q@x", "Q"),
])
def test_member_display_name_rules(first, last, email, shown, initials):
    member = queries.Member("u", email, first, last, "member", True, None, T0, None)
    assert (member.display_name, member.initials) == (shown, initials)

"""`user_seen_daily`: live users of live accounts by the UTC day they were last seen, for the active-users tile
(migration 0010).

Statement triggers on users move what a statement changed between days (each user counted against its account
as it is now); one on tenants takes a deleted account's users off, and puts a restored one's back.
"""
from __future__ import annotations

from sqlalchemy import Date, Select, cast, func, select

from backoffice.accounts.models import Tenant, User, UserSeenDaily
from backoffice.read_models.model import ReadModel

FROM_USERS = """
CREATE OR REPLACE FUNCTION user_seen_daily_from_users() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO user_seen_daily (day, users)
        SELECT (u.last_seen_at AT TIME ZONE 'UTC')::date, -count(*) FROM old_users AS u JOIN tenants AS t ON t.id = u.tenant_id
        WHERE u.deleted_at IS NULL AND u.last_seen_at IS NOT NULL AND t.deleted_at IS NULL GROUP BY 1
        ON CONFLICT (day) DO UPDATE SET users = user_seen_daily.users + EXCLUDED.users;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO user_seen_daily (day, users)
        SELECT (u.last_seen_at AT TIME ZONE 'UTC')::date, count(*) FROM new_users AS u JOIN tenants AS t ON t.id = u.tenant_id
        WHERE u.deleted_at IS NULL AND u.last_seen_at IS NOT NULL AND t.deleted_at IS NULL GROUP BY 1
        ON CONFLICT (day) DO UPDATE SET users = user_seen_daily.users + EXCLUDED.users;
    END IF;
    RETURN NULL;
END $$;
"""

FROM_TENANTS = """
CREATE OR REPLACE FUNCTION user_seen_daily_from_tenants() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO user_seen_daily (day, users)
    SELECT (u.last_seen_at AT TIME ZONE 'UTC')::date, sum(CASE WHEN n.deleted_at IS NULL THEN 1 ELSE -1 END)
    FROM new_tenants AS n JOIN old_tenants AS o ON o.id = n.id JOIN users AS u ON u.tenant_id = n.id
    WHERE (n.deleted_at IS NULL) <> (o.deleted_at IS NULL) AND u.deleted_at IS NULL AND u.last_seen_at IS NOT NULL
    GROUP BY 1
    ON CONFLICT (day) DO UPDATE SET users = user_seen_daily.users + EXCLUDED.users;
    RETURN NULL;
END $$;
"""

TRIGGERS = """
CREATE OR REPLACE TRIGGER users_user_seen_daily_insert AFTER INSERT ON users
    REFERENCING NEW TABLE AS new_users FOR EACH STATEMENT EXECUTE FUNCTION user_seen_daily_from_users();
CREATE OR REPLACE TRIGGER users_user_seen_daily_update AFTER UPDATE ON users
    REFERENCING OLD TABLE AS old_users NEW TABLE AS new_users FOR EACH STATEMENT
    EXECUTE FUNCTION user_seen_daily_from_users();
CREATE OR REPLACE TRIGGER users_user_seen_daily_delete AFTER DELETE ON users
    REFERENCING OLD TABLE AS old_users FOR EACH STATEMENT EXECUTE FUNCTION user_seen_daily_from_users();
CREATE OR REPLACE TRIGGER tenants_user_seen_daily AFTER UPDATE ON tenants
    REFERENCING OLD TABLE AS old_tenants NEW TABLE AS new_tenants FOR EACH STATEMENT
    EXECUTE FUNCTION user_seen_daily_from_tenants();
"""


def recompute(platform_currency: str) -> Select:
    """The counted users per day they were last seen: live users, seen, of a live account."""
    users, tenants = User.__table__, Tenant.__table__
    day = cast(func.timezone("UTC", users.c.last_seen_at), Date)
    return (select(day.label("day"), func.count().label("users"))
            .select_from(users.join(tenants, tenants.c.id == users.c.tenant_id))
            .where(users.c.deleted_at.is_(None), users.c.last_seen_at.is_not(None), tenants.c.deleted_at.is_(None))
            .group_by(day))


MODEL = ReadModel(
    table=UserSeenDaily.__table__,
    key=("day",),
    sources=("users", "tenants"),
    writer="triggers users_user_seen_daily_insert, _update, _delete, tenants_user_seen_daily",
    readers=("read/dashboard.py (the active users tile)",),
    recompute=recompute,
    sql=(FROM_USERS, FROM_TENANTS, TRIGGERS),
    functions=("user_seen_daily_from_users()", "user_seen_daily_from_tenants()"),
    triggers=(("users", "users_user_seen_daily_insert"), ("users", "users_user_seen_daily_update"),
              ("users", "users_user_seen_daily_delete"), ("tenants", "tenants_user_seen_daily")),
    empty={"users": 0},
)

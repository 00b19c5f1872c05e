"""`login_daily`: completed sign-ins per UTC day, for the dashboard's sign-ins chart (migration 0007).

Statement triggers on logins move the counts of inserted, updated (a pending sign-in completing) and deleted rows.
"""
from __future__ import annotations

from sqlalchemy import Date, Select, cast, func, select

from backoffice.accounts.models import Login, LoginDaily
from backoffice.read_models.model import ReadModel

FROM_LOGINS = """
CREATE OR REPLACE FUNCTION login_daily_from_logins() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO login_daily (day, succeeded)
        SELECT (o.created_at AT TIME ZONE 'UTC')::date, -count(*) FROM old_logins AS o
        WHERE o.outcome = 'succeeded' GROUP BY 1
        ON CONFLICT (day) DO UPDATE SET succeeded = login_daily.succeeded + EXCLUDED.succeeded;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO login_daily (day, succeeded)
        SELECT (n.created_at AT TIME ZONE 'UTC')::date, count(*) FROM new_logins AS n
        WHERE n.outcome = 'succeeded' GROUP BY 1
        ON CONFLICT (day) DO UPDATE SET succeeded = login_daily.succeeded + EXCLUDED.succeeded;
    END IF;
    RETURN NULL;
END $$;
"""

TRIGGERS = """
CREATE OR REPLACE TRIGGER logins_login_daily_insert AFTER INSERT ON logins
    REFERENCING NEW TABLE AS new_logins FOR EACH STATEMENT EXECUTE FUNCTION login_daily_from_logins();
CREATE OR REPLACE TRIGGER logins_login_daily_update AFTER UPDATE ON logins
    REFERENCING OLD TABLE AS old_logins NEW TABLE AS new_logins FOR EACH STATEMENT
    EXECUTE FUNCTION login_daily_from_logins();
CREATE OR REPLACE TRIGGER logins_login_daily_delete AFTER DELETE ON logins
    REFERENCING OLD TABLE AS old_logins FOR EACH STATEMENT EXECUTE FUNCTION login_daily_from_logins();
"""


def recompute(platform_currency: str) -> Select:
    """The succeeded sign-ins counted per UTC day."""
    logins = Login.__table__
    day = cast(func.timezone("UTC", logins.c.created_at), Date)
    return select(day.label("day"), func.count().label("succeeded")).where(logins.c.outcome == "succeeded") \
        .group_by(day)


MODEL = ReadModel(
    table=LoginDaily.__table__,
    key=("day",),
    sources=("logins",),
    writer="triggers logins_login_daily_insert, _update, _delete",
    readers=("read/dashboard.py (the sign-ins chart)",),
    recompute=recompute,
    sql=(FROM_LOGINS, TRIGGERS),
    functions=("login_daily_from_logins()",),
    triggers=(("logins", "logins_login_daily_insert"), ("logins", "logins_login_daily_update"),
              ("logins", "logins_login_daily_delete")),
    empty={"succeeded": 0},
)

"""`account_month_totals`: every account's metric MRR summed per month and billing currency (migration 0022).

What the SaaS metrics need at a month's end over every account (the MRR, the paying accounts and their MRR)
is the sum of these rows at or before it: a few rows per month of history, where reading `account_months` live
then costs every account paying at the time, so four times the history cost four times as much.

Statement triggers on account_months append each statement's change: its old rows out, its new rows in. Rows
are only ever appended, so two replays writing at once never wait for each other here (a keyed upsert would
hold the month's row until its transaction ends). `account_month_totals_compact()` folds each key's rows into
one; the scheduler runs it, as does `replay --all`. A key may so have several rows: the table's content is
its sums per key (`stored`), which is what it is checked and rebuilt by.
"""
from __future__ import annotations

from sqlalchemy import Integer, Select, func, literal_column, select

from backoffice.billing.models import AccountMonth, account_month_totals
from backoffice.billing.models.columns import MONEY
from backoffice.read_models.model import ReadModel

TOTALS = account_month_totals

# What each account_months row adds to its month's totals. The MRR at a month's end and the paying accounts
# then are these summed over every month up to it; the rest are the month's own figures (read/saas_metrics.py).
SUMS = {
    "mrr": "r.mrr_end - r.mrr_start",
    "paying_mrr": "greatest(r.mrr_end, 0) - greatest(r.mrr_start, 0)",  # the paying accounts' MRR
    "paying": "(r.mrr_end > 0)::integer - (r.mrr_start > 0)::integer",
    **{name: f"r.{name}" for name in ("new", "expansion", "contraction", "churn", "reactivation", "other")},
    "churned": "(r.mrr_start > 0 AND r.mrr_end <= 0)::integer",
    "new_logos": "(r.mrr_start <= 0 AND r.mrr_end > 0)::integer",
    # Of the accounts paying at the month's start: the change in their MRR, and its losses alone (NRR, GRR).
    "retained_change": "CASE WHEN r.mrr_start > 0 THEN r.mrr_end - r.mrr_start ELSE 0 END",
    "retained_loss": "CASE WHEN r.mrr_start > 0 THEN least(r.mrr_end - r.mrr_start, 0) ELSE 0 END",
}
COUNTS = ("paying", "churned", "new_logos")


_COLUMNS = ", ".join(SUMS)
_NOTHING = ", ".join("0" for _ in SUMS)
_SIGNED = ",\n                   ".join(f"sum(r.sign * ({expression})) AS {name}" for name, expression in SUMS.items())


def _append(rows: str) -> str:
    """One row per month and currency the statement changed: its old rows out, its new rows in, netted."""
    return f"""INSERT INTO account_month_totals (month, currency, {_COLUMNS})
        SELECT * FROM (
            SELECT r.month, r.currency,
                   {_SIGNED}
            FROM ({rows}) AS r GROUP BY r.month, r.currency) AS t
        WHERE ({', '.join(f't.{name}' for name in SUMS)}) IS DISTINCT FROM ({_NOTHING});"""


_OLD = "SELECT o.*, -1 AS sign FROM old_months AS o"
_NEW = "SELECT n.*, 1 AS sign FROM new_months AS n"
FROM_MONTHS = f"""
CREATE OR REPLACE FUNCTION account_month_totals_from_months() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        {_append(_OLD)}
    ELSIF TG_OP = 'INSERT' THEN
        {_append(_NEW)}
    ELSE
        {_append(f"{_OLD} UNION ALL {_NEW}")}
    END IF;
    RETURN NULL;
END $$;
"""

TRIGGERS = """
CREATE OR REPLACE TRIGGER account_months_totals_insert AFTER INSERT ON account_months
    REFERENCING NEW TABLE AS new_months FOR EACH STATEMENT EXECUTE FUNCTION account_month_totals_from_months();
CREATE OR REPLACE TRIGGER account_months_totals_update AFTER UPDATE ON account_months
    REFERENCING OLD TABLE AS old_months NEW TABLE AS new_months FOR EACH STATEMENT
    EXECUTE FUNCTION account_month_totals_from_months();
CREATE OR REPLACE TRIGGER account_months_totals_delete AFTER DELETE ON account_months
    REFERENCING OLD TABLE AS old_months FOR EACH STATEMENT EXECUTE FUNCTION account_month_totals_from_months();
"""

_FOLDED = ", ".join(f"sum(g.{name})" for name in SUMS)
COMPACT = f"""
CREATE OR REPLACE FUNCTION account_month_totals_compact() RETURNS bigint LANGUAGE sql AS $$
    WITH gone AS (DELETE FROM account_month_totals RETURNING *),
    folded AS (
        INSERT INTO account_month_totals (month, currency, {_COLUMNS})
        SELECT g.month, g.currency, {_FOLDED} FROM gone AS g
        GROUP BY g.month, g.currency HAVING ({_FOLDED}) IS DISTINCT FROM ({_NOTHING})
        RETURNING 1)
    SELECT (SELECT count(*) FROM gone) - (SELECT count(*) FROM folded);
$$;
"""


def stored() -> Select:
    """What the table holds: each key's rows summed."""
    return (select(TOTALS.c.month, TOTALS.c.currency, *(func.sum(TOTALS.c[name]).label(name) for name in SUMS))
            .group_by(TOTALS.c.month, TOTALS.c.currency))


def recompute(platform_currency: str) -> Select:
    """account_months' rows summed per month and currency, as the triggers add them."""
    months = AccountMonth.__table__.alias("r")
    return (select(months.c.month, months.c.currency,
                   *(func.sum(literal_column(expression, MONEY if name not in COUNTS else Integer)).label(name)
                     for name, expression in SUMS.items()))
            .group_by(months.c.month, months.c.currency))


MODEL = ReadModel(
    table=TOTALS,
    key=("month", "currency"),
    sources=("account_months",),
    writer="triggers account_months_totals_insert, _update, _delete (appending); account_month_totals_compact()",
    readers=("read/saas_metrics.py (every month's figures, the MRR before the window, the 12-month NRR and GRR)",),
    recompute=recompute,
    sql=(FROM_MONTHS, TRIGGERS, COMPACT),
    functions=("account_month_totals_from_months()", "account_month_totals_compact()"),
    triggers=(("account_months", "account_months_totals_insert"), ("account_months", "account_months_totals_update"),
              ("account_months", "account_months_totals_delete")),
    empty=dict.fromkeys(SUMS, 0),
    stored=stored,
)

"""Exchange rates: `fx_rates` (the ECB's daily reference rates, units of a currency per euro) and `fx_rate(from,
to, day)`, the conversion rule every reporting-currency figure follows: per_eur(to) ÷ per_eur(from) on the
latest ECB day on or before `day`, the euro being 1; NULL when a currency has no rate by then (backoffice/fx).
The bundled ECB history is loaded by `flask fx refresh`, not here: a migration reads no live code.

Revision ID: 0019_fx_rates
"""

import sqlalchemy as sa
from alembic import op

revision = "0019_fx_rates"
down_revision = "0018_account_months"
branch_labels = None
depends_on = None

FX_RATE = """
CREATE OR REPLACE FUNCTION fx_rate(from_currency text, to_currency text, on_day date) RETURNS numeric
LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN from_currency = to_currency THEN 1::numeric ELSE
        (CASE WHEN to_currency = 'EUR' THEN 1::numeric ELSE
            (SELECT r.per_eur FROM fx_rates AS r WHERE r.currency = to_currency AND r.day <= on_day
             ORDER BY r.day DESC LIMIT 1) END)
        / (CASE WHEN from_currency = 'EUR' THEN 1::numeric ELSE
            (SELECT r.per_eur FROM fx_rates AS r WHERE r.currency = from_currency AND r.day <= on_day
             ORDER BY r.day DESC LIMIT 1) END)
    END;
$$;
"""


def upgrade():
    op.create_table(
        "fx_rates",
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("per_eur", sa.Numeric(20, 8), nullable=False),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$' AND currency <> 'EUR'", name=op.f("ck_fx_rates_currency")),
        sa.CheckConstraint("per_eur > 0", name=op.f("ck_fx_rates_per_eur_positive")),
        sa.PrimaryKeyConstraint("currency", "day", name=op.f("pk_fx_rates")),
    )
    op.execute(FX_RATE)


def downgrade():
    op.execute("DROP FUNCTION fx_rate(text, text, date)")
    op.drop_table("fx_rates")

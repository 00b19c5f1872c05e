"""`fx_rates`: the ECB's daily reference rates, units of a currency per euro (migration 0019)."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.extensions import db


class FxRate(db.Model):
    __tablename__ = "fx_rates"
    __table_args__ = (
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$' AND currency <> 'EUR'", name="currency"),
        sa.CheckConstraint("per_eur > 0", name="per_eur_positive"),
    )

    currency: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, primary_key=True)
    per_eur: Mapped[Decimal] = mapped_column(sa.Numeric(20, 8))

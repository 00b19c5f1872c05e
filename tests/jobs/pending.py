"""How many archived Stripe events wait for a replay: what an outage test watches drain."""
from __future__ import annotations

from sqlalchemy import func, select

from backoffice.billing.models import StripeEventState
from backoffice.extensions import db


def pending(app) -> int:
    with app.app_context():
        try:
            return db.session.scalar(select(func.count()).select_from(StripeEventState)
                                     .where(StripeEventState.status == "pending"))
        finally:
            db.session.remove()

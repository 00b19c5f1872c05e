"""How many archived Stripe events wait for a replay: what an outage test watches drain."""
from __future__ import annotations

from sqlalchemy import func, select

from backoffice.billing.models import StripeEvent
from backoffice.extensions import db


def pending(app) -> int:
    with app.app_context():
        try:
            return db.session.scalar(select(func.count()).select_from(StripeEvent).where(StripeEvent.status == "pending"))
        finally:
            db.session.remove()

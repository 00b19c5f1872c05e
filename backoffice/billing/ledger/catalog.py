"""The price catalog in PostgreSQL (`plan_prices`, DESIGN §4.1): loaded for the rules, refreshed from Stripe.

Prices come through the gateway: all of them when a worker starts and hourly, and one at a time when the
replay job meets a price the catalog lacks (never on the webhook path).
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from backoffice.billing.ledger.pricing import Catalog, MissingKnowledge
from backoffice.billing.models import PlanPrice
from backoffice.stripe_gateway.results import PriceInfo

log = logging.getLogger(__name__)
PRICES = PlanPrice.__table__


def _entry(row: Any) -> PriceInfo:
    return PriceInfo(id=row.id, product_id=row.product_id, plan=row.plan, unit_amount=row.unit_amount,
                     currency=row.currency, interval=row.interval, interval_count=row.interval_count,
                     tax_behavior=row.tax_behavior, active=row.active)


def store_prices(session: Session, prices: Iterable[Any]) -> int:
    """Upsert gateway prices (`PriceInfo`) into the catalog; return how many."""
    rows = [dict(id=p.id, product_id=p.product_id, plan=p.plan, unit_amount=p.unit_amount, currency=p.currency,
                 interval=p.interval, interval_count=p.interval_count, tax_behavior=p.tax_behavior,
                 active=p.active, fetched_at=datetime.now(UTC)) for p in prices]
    if rows:
        statement = insert(PRICES).values(rows)
        session.execute(statement.on_conflict_do_update(
            index_elements=[PRICES.c.id],
            set_={name: statement.excluded[name] for name in rows[0] if name != "id"},
        ))
    return len(rows)


def load_catalog(session: Session, plan_order: Iterable[str], gateway: Any = None) -> Catalog:
    """The catalog as stored; with a gateway, a missing price is fetched from Stripe and stored."""

    def fetch(price_id: str) -> PriceInfo | None:
        from backoffice.stripe_gateway import StripeGatewayError, StripeNotFound

        try:
            price = gateway.price(price_id)
        except StripeNotFound:
            log.warning("price %s is not in the catalog, and Stripe has no such price", price_id)
            return None
        except StripeGatewayError as error:
            raise MissingKnowledge(f"price {price_id} (Stripe: {error})") from error
        store_prices(session, [price])
        return price

    rows = session.execute(select(PRICES)).all()
    return Catalog((_entry(row) for row in rows), plan_order, fetch if gateway is not None else None)


def refresh_catalog(session: Session, gateway: Any) -> int:
    """Store every Stripe price (with its product's plan); return how many."""
    return store_prices(session, gateway.prices())

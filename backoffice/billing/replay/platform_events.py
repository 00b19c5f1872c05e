"""Archived events that name no customer: catalog changes, coupons, refunds, invoice payments.

They get no ledger row. Price and product events keep the catalog current (so a new price is known
before the first subscription to it is replayed); the others are set aside as `ignored`, with the reason,
until the projection links them to a customer through their charge or invoice.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import ARRAY, Text, any_, bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session

from backoffice.billing.ledger.catalog import PRICES, store_prices
from backoffice.billing.models import (
    StripeEvent,
    StripeEventState,
    archived_with_states,
    latest_object_payload,
)
from backoffice.money import to_major
from backoffice.stripe_gateway.results import PriceInfo

EVENTS = StripeEvent.__table__
STATES = StripeEventState.__table__
NO_CUSTOMER = "belongs to no customer: kept for the projection, which links it through its charge or invoice"


def price_from_payload(price: dict[str, Any], product_plan: str | None) -> PriceInfo:
    """A price object as the catalog stores it (the gateway's PriceInfo fields)."""
    recurring = price.get("recurring") or {}
    currency = str(price.get("currency") or "").upper()
    product = price.get("product")
    return PriceInfo(
        id=price["id"], product_id=product.get("id") if isinstance(product, dict) else product,
        plan=(price.get("metadata") or {}).get("plan") or product_plan,
        unit_amount=to_major(price.get("unit_amount"), currency), currency=currency,
        interval=recurring.get("interval"), interval_count=recurring.get("interval_count"),
        tax_behavior=price.get("tax_behavior"), active=bool(price.get("active", True)),
    )


def settle_platform_events(session: Session) -> dict[str, int]:
    """Settle the pending events without a customer; return counts by outcome."""
    # Only catalog events are read here: the others (refunds, invoice payments… tens of thousands in a large
    # archive) are set aside by id, without holding their payloads in memory.
    catalog = or_(EVENTS.c.type.like("price.%"), EVENTS.c.type.like("product.%"))
    rows = session.execute(
        select(EVENTS.c.id, EVENTS.c.type, case((catalog, EVENTS.c.payload)).label("payload"))
        .select_from(archived_with_states())
        .where(STATES.c.status == "pending", EVENTS.c.stripe_customer_id.is_(None))
        .order_by(EVENTS.c.stripe_created_at, EVENTS.c.id)
    ).all()
    processed, ignored = [], []
    for row in rows:
        obj = ((row.payload or {}).get("data") or {}).get("object") or {}
        if row.type.startswith("price.") and obj.get("object") == "price":
            product = obj.get("product")
            product_plan = ((product.get("metadata") or {}).get("plan") if isinstance(product, dict)
                            else _product_plan(session, product))
            store_prices(session, [price_from_payload(obj, product_plan)])
            processed.append(row.id)
        elif row.type.startswith("product.") and obj.get("object") == "product":
            plan = (obj.get("metadata") or {}).get("plan")
            if plan:
                session.execute(update(PRICES).where(PRICES.c.product_id == obj.get("id"), PRICES.c.plan.is_(None))
                                .values(plan=plan))
            processed.append(row.id)
        else:
            ignored.append(row.id)
    # One array parameter, not one bound parameter per id.
    ids = bindparam("ids", type_=ARRAY(Text))
    if processed:
        session.execute(update(STATES).where(STATES.c.stripe_event_id == any_(ids))
                        .values(status="processed", processed_at=func.now()), {"ids": processed})
    if ignored:
        session.execute(update(STATES).where(STATES.c.stripe_event_id == any_(ids))
                        .values(status="ignored", processed_at=func.now(), error=NO_CUSTOMER), {"ids": ignored})
    return {"processed": len(processed), "ignored": len(ignored)}


def _product_plan(session: Session, product_id: Any) -> str | None:
    """The plan other prices of the product have (their product's metadata), else its archived product event."""
    if not isinstance(product_id, str):
        return None
    plan = session.scalar(select(PRICES.c.plan).where(PRICES.c.product_id == product_id, PRICES.c.plan.is_not(None))
                          .limit(1))
    if plan:
        return plan
    payload = session.scalar(latest_object_payload("product", product_id))
    if payload:
        return ((payload["data"]["object"].get("metadata")) or {}).get("plan")
    return None

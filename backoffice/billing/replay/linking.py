"""Linking a Stripe customer to its tenant (DESIGN §4.3): the subscription row it replays into, made when the
tenant has none, refused (with the reason) when the tenant is unknown, deleted before the billing began, or
already has another customer."""
from __future__ import annotations

import logging
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backoffice.accounts.models import Tenant
from backoffice.billing.ledger.pricing import ZERO
from backoffice.billing.models import Subscription

log = logging.getLogger(__name__)
DUPLICATE_CUSTOMER = "DuplicateCustomerForTenant"
UNKNOWN_TENANT = "UnknownTenant"


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class Links:
    """One batch's customers and tenants, read at once and locked as `link` takes them."""

    def __init__(self, session: Session, gateway: Any, customer_ids: list[str], events: dict[str, list[Any]]):
        """Load the batch's subscriptions, named tenants and those tenants' subscriptions at once."""
        self.session = session
        self.gateway = gateway
        self._subscriptions: dict[str, Subscription] = {s.stripe_customer_id: s for s in self.session.scalars(
            select(Subscription).where(Subscription.stripe_customer_id.in_(customer_ids)))}
        # Each customer's tenant as its archive names it, read once for the batch (`link` takes it from here).
        self._named = {c: self._tenant_in_archive(c, events.get(c, [])) for c in customer_ids
                       if c not in self._subscriptions}
        named = set(self._named.values())
        named.discard(None)
        self._tenants: dict[str, Tenant] = {t.id: t for t in self.session.scalars(select(Tenant).where(Tenant.id.in_(
            named | {s.tenant_id for s in self._subscriptions.values()})))}
        # Locked as `link` would lock each: two customers naming one tenant must not both take its row.
        self._by_tenant: dict[str, Subscription | None] = dict.fromkeys(named)
        if named:
            self._by_tenant.update((s.tenant_id, s) for s in self.session.scalars(
                select(Subscription).where(Subscription.tenant_id.in_(named)).with_for_update()))

    def link(self, customer_id: str, rows: list[Any]) -> tuple[Subscription | None, str | None]:
        """Find or make the customer's subscription row (DESIGN §4.3); None with the reason when it cannot."""
        subscription = self._subscriptions.get(customer_id)
        if subscription is not None:
            return subscription, None
        tenant_id = self._named.get(customer_id) or self._tenant_from_stripe(customer_id)
        if tenant_id is None:
            return None, f"{UNKNOWN_TENANT}: customer {customer_id} names no tenant (metadata.tenant_id)"
        tenant = self._tenants.get(tenant_id) or self.session.get(Tenant, tenant_id)
        if tenant is None:
            return None, f"{UNKNOWN_TENANT}: customer {customer_id} names tenant {tenant_id}, which does not exist"
        self._tenants[tenant_id] = tenant
        first_event = min(row.stripe_created_at for row in rows)
        if tenant.deleted_at is not None and first_event >= tenant.deleted_at:
            # Billing that began before the deletion is history and is kept; a new customer of a deleted
            # tenant is not linked.
            return None, f"{UNKNOWN_TENANT}: customer {customer_id} names tenant {tenant_id}, deleted before it began"
        if tenant_id in self._by_tenant:
            subscription = self._by_tenant[tenant_id]
        else:
            subscription = self.session.scalars(
                select(Subscription).where(Subscription.tenant_id == tenant_id).with_for_update()).one_or_none()
        if subscription is not None and subscription.stripe_customer_id not in (None, customer_id):
            return None, (f"{DUPLICATE_CUSTOMER}: tenant {tenant_id} already has customer "
                          f"{subscription.stripe_customer_id}; {customer_id} also names it")
        if subscription is None:
            subscription = Subscription(id=new_id("sbs"), tenant_id=tenant_id, forward_mrr=ZERO,
                                        account_status="free", cancel_at_period_end=False, drift_discrepancies=[])
            self.session.add(subscription)
        subscription.stripe_customer_id = customer_id
        self._subscriptions[customer_id] = subscription
        self._by_tenant[tenant_id] = subscription
        return subscription, None

    @staticmethod
    def _tenant_in_archive(customer_id: str, rows: list[Any]) -> str | None:
        """The tenant the customer's latest archived state naming one names; of one second's, the first in the
        rows' order. One pass: sorting every event of the customer only to find that one cost more."""
        latest, tenant_id = None, None
        for row in rows:
            if not row.type.startswith("customer."):
                continue  # only customer.created, .updated and .deleted carry the customer itself
            obj = (row.payload.get("data") or {}).get("object") or {}
            if obj.get("object") == "customer" and obj.get("id") == customer_id:
                named = (obj.get("metadata") or {}).get("tenant_id")
                if named and (latest is None or row.stripe_created_at > latest):
                    latest, tenant_id = row.stripe_created_at, named
        return str(tenant_id) if tenant_id else None

    def _tenant_from_stripe(self, customer_id: str) -> str | None:
        if self.gateway is None:
            return None
        from backoffice.stripe_gateway import StripeGatewayError

        try:
            return self.gateway.customer(customer_id).tenant_id
        except StripeGatewayError as error:
            log.warning("customer %s could not be fetched to link it: %s", customer_id, error)
            return None

"""The ledger's rules as every caller builds them (DESIGN §4.6): one catalog, one coupon lookup, one set of API
versions, so the replay, `flask billing verify`, reconcile, disaster recovery and restatement price alike."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from backoffice.billing.ledger.catalog import load_catalog
from backoffice.billing.ledger.pricing import MissingKnowledge, Pricing
from backoffice.billing.ledger.resolvers import ApiVersions
from backoffice.billing.ledger.rules import LedgerRules
from backoffice.billing.models import latest_object_payload

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReplaySettings:
    platform_currency: str
    plan_order: tuple[str, ...]
    api_versions: tuple[str, ...]

    @classmethod
    def from_config(cls, config: Any) -> ReplaySettings:
        return cls(config["PLATFORM_CURRENCY"], tuple(config["PLAN_ORDER"]), tuple(config["STRIPE_API_VERSIONS"]))


class CouponLookup:
    """Coupons from their archived events (they name no customer), else from Stripe; each asked once per run."""

    def __init__(self, session: Session, gateway: Any = None):
        self.session = session
        self.gateway = gateway
        self._found: dict[str, dict[str, Any] | None] = {}

    def __call__(self, coupon_id: str) -> dict[str, Any] | None:
        if coupon_id not in self._found:  # an unknowable coupon is asked again next time: it may be had then
            self._found[coupon_id] = self._archived(coupon_id) or self._fetched(coupon_id)
        return self._found[coupon_id]

    def _archived(self, coupon_id: str) -> dict[str, Any] | None:
        payload = self.session.scalar(latest_object_payload("coupon", coupon_id))
        return payload["data"]["object"] if payload else None

    def _fetched(self, coupon_id: str) -> dict[str, Any] | None:
        """Stripe's coupon; None when Stripe has none by that id; MissingKnowledge when Stripe cannot say."""
        if self.gateway is None:
            raise MissingKnowledge(f"coupon {coupon_id} (Stripe is not configured)")
        from backoffice.stripe_gateway import StripeGatewayError, StripeNotFound

        try:
            return self.gateway.coupon(coupon_id)
        except StripeNotFound:
            log.warning("coupon %s is in no archived event, and Stripe has no such coupon", coupon_id)
            return None
        except StripeGatewayError as error:
            raise MissingKnowledge(f"coupon {coupon_id} (Stripe: {error})") from error


def load_pricing(session: Session, plan_order: tuple[str, ...], gateway: Any = None) -> Pricing:
    """The catalog as stored (a missing price fetched and stored, with a gateway) and the coupon lookup."""
    return Pricing(load_catalog(session, plan_order, gateway), CouponLookup(session, gateway))


def load_rules(session: Session, settings: ReplaySettings, gateway: Any = None) -> LedgerRules:
    """The rules with the one pricing every caller shares."""
    return LedgerRules(load_pricing(session, settings.plan_order, gateway), ApiVersions(settings.api_versions))

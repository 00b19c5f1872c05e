"""The accounts blueprint, and what its list, detail and action views share."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, current_app
from flask_babel import gettext as _

from backoffice.extensions import db
from backoffice.read import account_overview

bp = Blueprint("accounts", __name__)


def billing_enabled() -> bool:
    return bool(current_app.config["PUBLIC_SUBSCRIPTION_ENABLED"])


def plan_order() -> tuple[str, ...]:
    return tuple(current_app.config["PLAN_ORDER"])


def overview_or_404(tenant_id: str) -> account_overview.AccountOverview:
    """What the side pane and the account's page show of the account, or 404."""
    config = current_app.config
    overview = account_overview.account_overview(
        db.session, tenant_id, plan_order=plan_order(), platform_currency=config["PLATFORM_CURRENCY"],
        now=datetime.now(UTC), stripe_secret_key=config["STRIPE_SECRET_KEY"], stripe_api_base=config["STRIPE_API_BASE"])
    if overview is None:
        abort(404, description=_("No account %(id)s.", id=tenant_id))
    return overview

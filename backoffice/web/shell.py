"""What every page's shell needs: the menu, the operator, and feature switches."""
from dataclasses import dataclass

from flask import Flask, current_app, request
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import generate_csrf


@dataclass(frozen=True)
class MenuItem:
    """One entry of the side menu."""

    endpoint: str | None
    label: object
    icon: str
    billing: bool = False


MENU = (
    MenuItem("dashboard.index", _l("Dashboard"), "▦"),
    MenuItem("saas_metrics.index", _l("SaaS metrics"), "%", billing=True),
    MenuItem("accounts.index", _l("Accounts"), "◫"),
    MenuItem("users.index", _l("Users"), "☺"),
    MenuItem("billing_events.index", _l("Billing events"), "≡", billing=True),
    MenuItem("invoices.index", _l("Invoices"), "¤", billing=True),
    MenuItem("failed_events.index", _l("Failed events"), "⚠", billing=True),
    MenuItem("jobs.index", _l("Jobs"), "⟳", billing=True),
    MenuItem("audit.index", _l("Audit log"), "✎"),
)

COMING_SOON = (
    MenuItem(None, _l("Feature flags"), "⚑"),
    MenuItem(None, _l("Support"), "✉"),
    MenuItem(None, _l("Wait list"), "☰"),
)


def shell_context() -> dict[str, object]:
    """Give every template the menu (billing entries only when billing is public) and the CSRF token."""
    billing = current_app.config["PUBLIC_SUBSCRIPTION_ENABLED"]
    return {
        "menu": [item for item in MENU if billing or not item.billing],
        "coming_soon": COMING_SOON,
        "billing_enabled": billing,
        "csrf_token_value": generate_csrf,
        "current_path": request.full_path.rstrip("?") if request else "/",
        "languages": {"en": "English", "da": "Dansk"},
        "get_locale": get_locale,
    }


def init_app(app: Flask) -> None:
    """Make the shell's context available to every template."""
    app.context_processor(shell_context)

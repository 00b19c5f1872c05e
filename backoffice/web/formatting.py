"""Jinja filters that put domain values in the operator's words: money, countries, relative times, labels."""
from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, g
from flask_babel import (
    format_date,
    format_datetime,
    format_timedelta,
    get_locale,
    gettext,
)
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from backoffice.billing.ledger.vocabulary import AccountStatus, EventType, Movement
from backoffice.extensions import db
from backoffice.fx import rates
from backoffice.web import numbers

ACCOUNT_STATUS_LABELS = {
    AccountStatus.ACTIVE: _l("Active"),
    AccountStatus.DOWNGRADING: _l("Downgrading"),
    AccountStatus.CANCELING: _l("Canceling"),
    AccountStatus.CANCELED: _l("Canceled"),
    AccountStatus.FREE: _l("Free"),
}
ROLE_LABELS = {"owner": _l("Owner"), "admin": _l("Admin"), "member": _l("Member")}
LOGIN_METHOD_LABELS = {"one_time_password": _l("One-time password"), "google": _l("Google")}
LOGIN_OUTCOME_LABELS = {"succeeded": _l("Succeeded"), "failed": _l("Failed"), "pending": _l("Pending")}
REVOKED_REASON_LABELS = {"logged_out": _l("Logged out"), "revoked": _l("Revoked"),
                         "replay_attack_detected": _l("Replay attack detected"), "switch_tenant": _l("Switched account")}
DEVICE_KIND_LABELS = {"desktop": _l("Desktop"), "phone": _l("Phone"), "tablet": _l("Tablet"), "bot": _l("Bot"),
                      "unknown": _l("Unknown device")}
INVOICE_KIND_LABELS = {"invoice": _l("Invoice"), "credit_note": _l("Credit note"), "refund": _l("Refund")}
PAYMENT_STATUS_LABELS = {
    "succeeded": _l("Paid"),
    "refunded": _l("Refunded"),
    "failed": _l("Failed"),
    "pending": _l("Pending"),
    "cancelled": _l("Void"),
}
BILLING_EVENT_LABELS = {
    EventType.CREATED: _l("Subscribed"),
    EventType.RENEWED: _l("Renewed"),
    EventType.UPGRADED: _l("Upgraded"),
    EventType.DOWNGRADE_SCHEDULED: _l("Downgrade scheduled"),
    EventType.DOWNGRADE_CANCELLED: _l("Downgrade cancelled"),
    EventType.DOWNGRADED: _l("Downgraded"),
    EventType.CANCELLED: _l("Cancellation scheduled"),
    EventType.REACTIVATED: _l("Reactivated"),
    EventType.EXPIRED: _l("Expired"),
    EventType.IMMEDIATELY_CANCELLED: _l("Cancelled immediately"),
    EventType.SUSPENDED: _l("Suspended"),
    EventType.PAST_DUE: _l("Past due"),
    EventType.PAYMENT_FAILED: _l("Payment failed"),
    EventType.PAYMENT_RECOVERED: _l("Payment recovered"),
    EventType.PAYMENT_REFUNDED: _l("Payment refunded"),
    EventType.BILLING_INFO_ADDED: _l("Billing info added"),
    EventType.BILLING_INFO_UPDATED: _l("Billing info updated"),
    EventType.PAYMENT_METHOD_UPDATED: _l("Payment method updated"),
    EventType.NO_OP: _l("No change"),
    EventType.UNCLASSIFIED: _l("Unclassified"),
    EventType.BASELINE: _l("Ledger baseline"),
}
OPERATOR_ACTION_LABELS = {
    "sync": _l("Sync with Stripe"),
    "reconcile": _l("Reconcile"),
    "acknowledge_drift": _l("Acknowledge drift"),
    "disaster_recovery": _l("Disaster recovery"),
    "retry_event": _l("Retry failed event"),
    "sweep": _l("Drift sweep"),
    "replay": _l("Replay from archive"),
    "rebuild_rollups": _l("Rebuild MRR rollups"),
    "restate": _l("Restate the ledger"),
}
# Statuses as Stripe spells them (subscriptions, archived events) and the drift checks' "missing": shown beside
# translated badges, so they are translated here once; a value not listed (a plan key, an event type) shows as is.
STRIPE_STATUS_LABELS = {
    "active": _l("Active"),
    "trialing": _l("Trial"),
    "past_due": _l("Past due"),
    "unpaid": _l("Unpaid"),
    "canceled": _l("Canceled"),
    "incomplete": _l("Incomplete"),
    "incomplete_expired": _l("Incomplete, expired"),
    "paused": _l("Paused"),
    "missing": _l("Missing"),
    "pending": _l("Pending"),
    "processed": _l("Processed"),
    "ignored": _l("Ignored"),
    "failed": _l("Failed"),
}
# The keys operator actions write into the audit log's parameters and results (operators.audit.record_action).
AUDIT_FIELD_LABELS = {
    "customer": _l("Stripe customer"),
    "customers": _l("Stripe customers"),
    "stripe_event_id": _l("Stripe event"),
    "kinds": _l("Drift kinds"),
    "acknowledged": _l("Acknowledged"),
    "requeued": _l("Requeued"),
    "cutoff": _l("Cutoff"),
    "recovered": _l("Missed events recovered"),
    "appended": _l("Ledger rows appended"),
    "discrepancies": _l("Discrepancies"),
    "recovery": _l("Disaster recovery"),
    "gaps": _l("Gaps"),
    "baseline": _l("Baseline per month"),
    "currency": _l("Currency"),
    "refused": _l("Refused"),
    "platform": _l("Platform currency"),
    "failed": _l("Failed"),
    "outcome": _l("Outcome"),
    "skipped": _l("Skipped"),
    "differences": _l("Differences"),
    "corrected": _l("Corrected"),
    "rowless": _l("Customers without rows"),
    "unpriced": _l("Unpriced customers"),
    "changes": _l("Changes"),
    "checked": _l("Checked"),
    "due": _l("Due"),
    "pages": _l("Pages"),
    "sweep": _l("Sweep"),
    "error": _l("Error"),
}
SEVERITY_LABELS = {"Critical": _l("Critical"), "Warning": _l("Warning")}
# MRR movements (DESIGN §4.9).
MOVEMENT_LABELS = {Movement.NEW: _l("New"), Movement.EXPANSION: _l("Expansion"),
                   Movement.REACTIVATION: _l("Reactivation"), Movement.CONTRACTION: _l("Contraction"),
                   Movement.CHURN: _l("Churn"), Movement.OTHER: _l("Other"),
                   # Not a ledger movement: the part of a reporting-currency change that exchange rates made.
                   "fx": _l("Exchange rates")}
# What each drift kind means, in the operator's words (DESIGN §5); the check's own detail is shown beside it.
DRIFT_KIND_LABELS = {
    "MissingEvent": _l("Payments were recorded but the ledger has no row"),
    "MissingHistoricalEvent": _l("A Stripe object has no archived event (recoverable)"),
    "MissingHistoricalEventUnrecoverable": _l("A Stripe object has no archived event, and Stripe no longer lists it"),
    "UnclassifiedStripeEvent": _l("An event the ledger could not classify"),
    "UnsupportedStripeApiVersion": _l("Events in an API version the ledger does not read"),
    "StripeEventPayloadDivergence": _l("The same event arrived twice with different bodies"),
    "SubscriptionStateMismatch": _l("The subscription differs from Stripe"),
    "ScheduledPriceMissing": _l("A downgrade is scheduled but its price is unknown"),
    "BillingEventDenormalizationStale": _l("A ledger row differs from a fresh replay"),
    "AmountExcludingTaxClamped": _l("Tax exceeds the invoice total"),
    "CurrencyMismatch": _l("Stripe and the ledger disagree on the subscription's currency"),
    "DuplicateCustomerForTenant": _l("A second Stripe customer names this account"),
    "PricingKnowledgeMissing": _l("Events wait for a price or coupon Stripe cannot give now"),
}
CARD_BRANDS = {"visa": "Visa", "mastercard": "Mastercard", "amex": "American Express", "discover": "Discover",
               "diners": "Diners Club", "jcb": "JCB", "unionpay": "UnionPay", "link": "Link"}


def sync_refusal(code: str, params: dict[str, str] | None = None) -> str:
    """Why a Sync could not run, in the operator's words."""
    params = params or {}
    if code == "not_configured":
        return gettext("Stripe is not configured (STRIPE_SECRET_KEY), so there is nothing to sync with.")
    if code == "no_customer":
        return gettext("This account has no Stripe customer yet.")
    if code == "currency":
        return gettext("Stripe bills this customer in %(currency)s, the platform in %(platform)s: its amounts cannot "
                       "join the platform's books.", currency=params.get("currency"), platform=params.get("platform"))
    if code == "cutoff_future":
        return gettext("The cutoff is in the future: pick a moment in the past.")
    if code == "cutoff_before_complete":
        return gettext("An earlier disaster recovery already declared the history complete from a later moment: "
                       "pick a cutoff after it.")
    return code


def money(amount: Decimal | None, currency: str | None) -> str:
    """An amount in its currency, formatted for the operator's locale; an em dash when unknown."""
    if amount is None or not currency:
        return "—"
    return numbers.money_format(get_locale(), currency.upper())(Decimal(amount))


def flag(country: str | None) -> str:
    """The flag emoji of an ISO 3166 country code (regional indicator letters)."""
    if not country or len(country) != 2 or not country.isalpha():
        return ""
    return "".join(chr(0x1F1E6 + ord(letter) - ord("A")) for letter in country.upper())


# Vendored from the npm package flag-icons (MIT), 4x3 SVGs: emoji flags are empty boxes in Debian's Chromium.
FLAG_DIRECTORY = "vendor/flags/flag-icons-7.5.0"
# Babel's territory codes that flag-icons draws no flag for (pseudo-regions and unknown): these show the name.
FLAGLESS_TERRITORIES = frozenset({"AC", "CQ", "EA", "EZ", "QO", "TA", "XA", "XB", "ZZ"})


def flag_svg(country: str | None) -> str | None:
    """The static path of a country's vendored SVG flag, or None when the code is not an ISO 3166 alpha-2."""
    if not country or len(country) != 2 or not country.isascii() or not country.isalpha():
        return None
    if country.upper() in FLAGLESS_TERRITORIES or country.upper() not in get_locale().territories:
        return None
    return f"{FLAG_DIRECTORY}/{country.lower()}.svg"


def country_name(country: str | None) -> str:
    if not country:
        return ""
    return get_locale().territories.get(country.upper(), country.upper())


def relative(moment: datetime | None) -> Markup | str:
    """How long ago (or until) a moment is, in the operator's language, with the absolute time on hover."""
    if moment is None:
        return "—"
    # "1 week ago" alone cannot be checked against Stripe or a log: the <time> carries the instant and its zone.
    return Markup('<time datetime="{}" title="{}">{}</time>').format(
        _iso(moment), moment_text(moment), format_timedelta(moment - datetime.now(UTC), add_direction=True))


def month_name(value: date | None) -> str:
    """A calendar month as the locale writes it (`Mar 2026`, `mar. 2026`)."""
    return format_date(value, "MMM y") if value is not None else "—"


def day(moment: datetime | None) -> str:
    return format_date(moment, "medium") if moment is not None else "—"


def number(value: int | Decimal | None) -> str:
    """A count with the locale's grouping."""
    return numbers.count_format(get_locale())(Decimal(value)) if value is not None else "—"


def signed_money(amount: Decimal | None, currency: str | None) -> str:
    """An amount with its sign always shown (+, − or ±): a change rather than a balance."""
    if amount is None or not currency:
        return "—"
    sign = "+" if amount > 0 else "−" if amount < 0 else "±"
    return sign + money(abs(amount), currency)


def moment_text(value: datetime | None) -> str:
    """A date and time to the second in the locale's one style, with its zone: `6. dec. 2026 20.41.07 UTC`."""
    if value is None:
        return "—"
    # Babel's medium style names no zone; "z" names the one flask-babel converts to (BABEL_DEFAULT_TIMEZONE).
    return f"{format_datetime(value, 'medium')} {format_datetime(value, 'z')}"


def moment(value: datetime | None) -> Markup | str:
    """`moment_text` in a <time> element a machine can read; plain text for attributes is `moment_text`."""
    if value is None:
        return "—"
    return Markup('<time datetime="{}">{}</time>').format(_iso(value), moment_text(value))


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def field_text(value: str) -> Markup | str:
    """An audit field's text: a timestamp the operation stored as ISO 8601 is shown as every other time."""
    if "T" in value:
        try:
            stamp = datetime.fromisoformat(value)
        except ValueError:
            return value
        if stamp.tzinfo is not None:
            return moment(stamp)
    return value


def percent(value: int | Decimal | None) -> str:
    """A percentage (17 or 8.2, already ×100) in the locale's way: `8.2%` in English, `8,2 %` in Danish."""
    if value is None:
        return "—"
    # Unquantized: the figure keeps the decimals it was rounded to upstream, not the pattern's none.
    return numbers.percent_format(get_locale())(Decimal(value))


def rate(value: Decimal | None) -> str:
    """A ratio (0.4) as a percentage with one decimal (40.0 %), "—" when there is no figure."""
    return "—" if value is None else percent((Decimal(value) * 100).quantize(Decimal("0.1")))


def label(value: str | None, labels: dict[str, object]) -> str:
    if value is None:
        return "—"
    return str(labels.get(value, value))


def plan_name(plan: str | None) -> str:
    """Plans are catalog keys (`basis`, `standard`): shown as product names."""
    return plan.replace("_", " ").title() if plan else "—"


def https_url(url: str | None) -> str | None:
    """The URL when it is an https address with a host, else None: Stripe-supplied links never run script."""
    if not url or url != url.strip():
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    # urlsplit lowercases the scheme, so `JAVASCRIPT:` and `HTTPS:` are judged alike; control characters, which
    # browsers strip before reading the scheme, make the URL no link at all.
    if parts.scheme != "https" or not parts.hostname or any(ord(ch) < 0x21 or ord(ch) == 0x7F for ch in url):
        return None
    # `.invalid` is reserved never to resolve (RFC 2606): the sandbox's documents live there, and a link that
    # cannot open is worse than none.
    if parts.hostname == "invalid" or parts.hostname.endswith(".invalid"):
        return None
    return url


# The host the Stripe sandbox writes its documents under (backoffice/stripe_sandbox/documents.py): reserved, so that
# its objects' URLs do not depend on the port a sandbox ran on. The sandbox serves them under /documents.
SANDBOX_DOCUMENTS_HOST = "pay.stripe-sandbox.invalid"


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def document_url(url: str | None, api_base: str | None = None) -> str | None:
    """A Stripe document's link (an invoice PDF, a credit note): an https address as `https_url` takes it; or,
    when the API is a sandbox on loopback, a sandbox document's path under that sandbox's own address."""
    if api_base is None and current_app:
        api_base = current_app.config.get("STRIPE_API_BASE")
    if url and api_base and url == url.strip():
        parts, base = urlsplit(url), urlsplit(api_base)
        if (parts.scheme == "https" and parts.hostname == SANDBOX_DOCUMENTS_HOST and _is_loopback(base.hostname)
                and parts.path.startswith("/") and not parts.query and https_url(url) is None):
            return f"{base.scheme}://{base.netloc}/documents{parts.path}"
    return https_url(url)


def _day_of(moment: datetime | date | None) -> date:
    if moment is None:
        return datetime.now(UTC).date()
    return moment.astimezone(UTC).date() if isinstance(moment, datetime) else moment


def _shown_rates() -> dict[tuple[str, date], Decimal | None]:
    """This request's rates to the reporting currency by (currency, day): read once, by a list's whole page."""
    return g.setdefault("fx_rates_shown", {})


def reporting_rates(rows: Sequence[Any], currency_field: str, moment_field: str | None = None) -> str:
    """Read in one query the rates that `in_reporting_currency` will want for a page of rows (each row's currency
    at its own day, or today without `moment_field`), rather than one query per row. Renders nothing."""
    reporting = current_app.config["PLATFORM_CURRENCY"]
    memo = _shown_rates()
    wanted = {(currency, _day_of(getattr(row, moment_field) if moment_field else None))
              for row in rows if (currency := getattr(row, currency_field)) and currency != reporting}
    wanted -= memo.keys()
    if wanted:
        memo.update(rates.rates_at(db.session, wanted, reporting))
    return ""


def in_reporting_currency(amount: Decimal | None, currency: str | None, moment: datetime | date | None = None) -> str:
    """Beside an amount billed in another currency, what it is in the reporting currency at that day's rate
    (backoffice/fx: an MRR shown now at today's, a row's amount at its own day's): "≈ €44.55"; empty in the
    reporting currency itself, and where the rate is not known (the list still shows the original)."""
    reporting = current_app.config["PLATFORM_CURRENCY"]
    if amount is None or not currency or currency == reporting:
        return ""
    day = _day_of(moment)
    memo = _shown_rates()
    if (currency, day) not in memo:
        memo.update(rates.rates_at(db.session, [(currency, day)], reporting))
    rate = memo[(currency, day)]
    return "" if rate is None else "≈ " + money(rates.convert(Decimal(amount), rate), reporting)


def init_app(app: Flask) -> None:
    """Register the filters."""
    app.jinja_env.filters.update(
        money=money, signed_money=signed_money, number=number, flag=flag, flag_svg=flag_svg, country_name=country_name,
        relative=relative, rate=rate, month_name=month_name, day=day, moment=moment, moment_text=moment_text,
        percent=percent, plan_name=plan_name, https_url=https_url, document_url=document_url,
        in_reporting_currency=in_reporting_currency, reporting_rates=reporting_rates,
        stripe_status=lambda value: label(value, STRIPE_STATUS_LABELS),
        audit_field=lambda value: label(value, AUDIT_FIELD_LABELS), field_text=field_text,
        account_status=lambda value: label(value, ACCOUNT_STATUS_LABELS),
        role=lambda value: label(value, ROLE_LABELS),
        login_method=lambda value: label(value, LOGIN_METHOD_LABELS),
        login_outcome=lambda value: label(value, LOGIN_OUTCOME_LABELS),
        revoked_reason=lambda value: label(value, REVOKED_REASON_LABELS),
        device_kind=lambda value: label(value, DEVICE_KIND_LABELS),
        invoice_kind=lambda value: label(value, INVOICE_KIND_LABELS),
        payment_status=lambda value: label(value, PAYMENT_STATUS_LABELS),
        billing_event=lambda value: label(value, BILLING_EVENT_LABELS),
        operator_action=lambda value: label(value, OPERATOR_ACTION_LABELS),
        sync_refusal=sync_refusal,
        severity=lambda value: label(value, SEVERITY_LABELS),
        movement=lambda value: label(value, MOVEMENT_LABELS),
        drift_kind=lambda value: label(value, DRIFT_KIND_LABELS),
        card_brand=lambda value: CARD_BRANDS.get((value or "").lower(), (value or "").title()),
    )

"""The billing tables (DESIGN §3, §4): one module per story, every name importable from here as before.

The models declare every column, constraint and index so that `flask db check` compares them with the database;
the append-only rules of §4.7 are enforced by triggers that live only in the migrations.
"""
from backoffice.billing.models.archive import (  # noqa: F401
    StripeEvent,
    StripeEventDivergence,
    StripeEventState,
    SyncState,
    archived_with_states,
    latest_object_payload,
    payload_object_field,
)
from backoffice.billing.models.columns import (  # noqa: F401
    ACCOUNT_STATUSES,
    BILLING_EVENT_TYPES,
    COUNTED_PAYMENT_STATUSES,
    MONEY,
    MOVEMENTS,
    PAYMENT_STATUSES,
    PRICE_INTERVALS,
    RECOVERY_SOURCES,
    SHA256_HEX,
    STRIPE_EVENT_STATUSES,
    SUBSCRIPTION_STATUSES,
    TAX_BEHAVIORS,
    TIMESTAMP,
)
from backoffice.billing.models.ledger import (  # noqa: F401
    BillingEvent,
    BillingEventCorrection,
    LedgerValues,
    effective_billing_events,
)
from backoffice.billing.models.projection import (  # noqa: F401
    PaymentTransaction,
    PlanPrice,
    Subscription,
)
from backoffice.billing.models.read_models import (  # noqa: F401
    AccountMonth,
    InvoiceListRow,
    InvoiceTotal,
    LedgerIndex,
    LedgerTip,
    MrrDaily,
    RevenueDaily,
    account_month_totals,
)

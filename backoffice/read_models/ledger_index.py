"""`ledger_index`: the billing events list's read model, one narrow row per ledger row with its effective type,
movement, place and currency (migrations 0008, 0012, 0020).

A statement trigger on billing_events inserts the appended rows; one on billing_event_corrections re-reads the
corrected rows from `effective_billing_events`. Each row carries its account's sort key (account_key.py).
"""
from __future__ import annotations

from sqlalchemy import Select, select

from backoffice.billing.models import LedgerIndex, effective_billing_events
from backoffice.read_models import account_key
from backoffice.read_models.model import ReadModel

TENANT_KEY = account_key.of_name("t.name")  # the joined tenant's, inserted with each row
FROM_LEDGER = f"""
CREATE OR REPLACE FUNCTION ledger_index_from_ledger() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO ledger_index (billing_event_id, tenant_id, occurred_at, position, event_type, movement, currency,
                              account_key)
    SELECT a.id, a.tenant_id, a.occurred_at, a.position, a.event_type, a.movement, a.currency, {TENANT_KEY}
    FROM appended AS a LEFT JOIN tenants AS t ON t.id = a.tenant_id;
    RETURN NULL;
END $$;
"""

FROM_CORRECTION = """
CREATE OR REPLACE FUNCTION ledger_index_from_correction() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ledger_index AS li
    SET position = v.position, event_type = v.event_type, movement = v.movement
    FROM effective_billing_events AS v
    WHERE v.id = li.billing_event_id AND v.id IN (SELECT c.billing_event_id FROM corrected AS c);
    RETURN NULL;
END $$;
"""

TRIGGERS = """
CREATE OR REPLACE TRIGGER billing_events_ledger_index AFTER INSERT ON billing_events
    REFERENCING NEW TABLE AS appended FOR EACH STATEMENT EXECUTE FUNCTION ledger_index_from_ledger();
CREATE OR REPLACE TRIGGER billing_event_corrections_ledger_index AFTER INSERT ON billing_event_corrections
    REFERENCING NEW TABLE AS corrected FOR EACH STATEMENT EXECUTE FUNCTION ledger_index_from_correction();
"""


def recompute(platform_currency: str) -> Select:
    """Every ledger row's effective values, keyed by its account's current name."""
    view = effective_billing_events
    return select(view.c.id.label("billing_event_id"), view.c.tenant_id, view.c.occurred_at, view.c.position,
                  view.c.event_type, view.c.movement, account_key.account_key(view.c.tenant_id).label("account_key"),
                  view.c.currency)


MODEL = ReadModel(
    table=LedgerIndex.__table__,
    key=("billing_event_id",),
    sources=("billing_events", "billing_event_corrections", "tenants"),
    writer="triggers billing_events_ledger_index, billing_event_corrections_ledger_index; account key: "
           "ledger_index_account_key, tenants_account_key",
    readers=("billing/lists/history.py (the billing events list, an account's billing events tab)",),
    recompute=recompute,
    sql=(FROM_LEDGER, FROM_CORRECTION, TRIGGERS, account_key.OF_ROW, account_key.FROM_TENANT,
         account_key.on_insert("ledger_index")),
    functions=("ledger_index_from_ledger()", "ledger_index_from_correction()", *account_key.FUNCTIONS),
    triggers=(("billing_events", "billing_events_ledger_index"),
              ("billing_event_corrections", "billing_event_corrections_ledger_index"),
              ("ledger_index", "ledger_index_account_key"), account_key.TENANT_TRIGGER),
)

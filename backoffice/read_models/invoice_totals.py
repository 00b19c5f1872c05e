"""`invoice_totals`: the invoices list's counted rows summed per account, kind and currency (migration 0013).

Statement triggers on invoice_rows move each statement's old rows out and new rows in, so the list's totals add
up one row per account instead of reading every row. It derives from `invoice_rows`, so it comes after it in the
registry: rebuilding the rows moves the totals with them.
"""
from __future__ import annotations

from sqlalchemy import Select, func, select

from backoffice.billing.models import COUNTED_PAYMENT_STATUSES, InvoiceListRow, InvoiceTotal
from backoffice.read_models.model import ReadModel

COUNTED = COUNTED_PAYMENT_STATUSES

FROM_ROWS = """
CREATE OR REPLACE FUNCTION invoice_totals_from_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO invoice_totals (tenant_id, kind, currency, amount)
        SELECT r.tenant_id, r.kind, r.currency, -coalesce(sum(r.amount), 0) FROM old_rows AS r
        WHERE r.status IN ('succeeded', 'refunded') GROUP BY 1, 2, 3
        ON CONFLICT (tenant_id, kind, currency) DO UPDATE SET amount = invoice_totals.amount + EXCLUDED.amount;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO invoice_totals (tenant_id, kind, currency, amount)
        SELECT r.tenant_id, r.kind, r.currency, coalesce(sum(r.amount), 0) FROM new_rows AS r
        WHERE r.status IN ('succeeded', 'refunded') GROUP BY 1, 2, 3
        ON CONFLICT (tenant_id, kind, currency) DO UPDATE SET amount = invoice_totals.amount + EXCLUDED.amount;
    END IF;
    RETURN NULL;
END $$;
"""

TRIGGERS = """
CREATE OR REPLACE TRIGGER invoice_rows_totals_insert AFTER INSERT ON invoice_rows
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION invoice_totals_from_rows();
CREATE OR REPLACE TRIGGER invoice_rows_totals_update AFTER UPDATE ON invoice_rows
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
    EXECUTE FUNCTION invoice_totals_from_rows();
CREATE OR REPLACE TRIGGER invoice_rows_totals_delete AFTER DELETE ON invoice_rows
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION invoice_totals_from_rows();
"""


def recompute(platform_currency: str) -> Select:
    """The counted rows of invoice_rows summed per account, kind and currency."""
    rows = InvoiceListRow.__table__
    return (select(rows.c.tenant_id, rows.c.kind, rows.c.currency,
                   func.coalesce(func.sum(rows.c.amount), 0).label("amount"))
            .where(rows.c.status.in_(COUNTED))
            .group_by(rows.c.tenant_id, rows.c.kind, rows.c.currency))


MODEL = ReadModel(
    table=InvoiceTotal.__table__,
    key=("tenant_id", "kind", "currency"),
    sources=("invoice_rows",),
    writer="triggers invoice_rows_totals_insert, _update, _delete",
    readers=("billing/lists/invoices.py (the invoices list's totals)", "demo/prove_checks.py"),
    recompute=recompute,
    sql=(FROM_ROWS, TRIGGERS),
    functions=("invoice_totals_from_rows()",),
    triggers=(("invoice_rows", "invoice_rows_totals_insert"), ("invoice_rows", "invoice_rows_totals_update"),
              ("invoice_rows", "invoice_rows_totals_delete")),
    empty={"amount": 0},
)

"""`invoice_rows`: the invoices list's read model, one narrow row per row of the dual-row projection
(billing/lists/invoices.py documents it; migrations 0011, 0012, 0015).

Statement triggers on payment_transactions re-project the transactions a statement writes. The projection is one
SQL function over a payment's net revenue (net_revenue.py): the invoice with its original outcome, a credit note
carrying the refund beside it, else a refund of its own; the recomputation calls the same function.
"""
from __future__ import annotations

from sqlalchemy import Select, column, func, select, true
from sqlalchemy.types import DateTime, Numeric, Text

from backoffice.billing.models import InvoiceListRow, PaymentTransaction
from backoffice.read_models import account_key, net_revenue
from backoffice.read_models.model import ReadModel

ROWS_OF = """
CREATE OR REPLACE FUNCTION invoice_rows_of(p payment_transactions)
RETURNS TABLE (kind text, date timestamptz, status text, amount numeric) LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE m.part WHEN 'payment' THEN 'invoice' WHEN 'credit' THEN 'credit_note' ELSE 'refund' END, m.at,
           CASE WHEN m.part = 'payment' THEN coalesce(nullif(p.status, 'refunded'), 'succeeded') ELSE 'refunded' END,
           CASE WHEN m.part = 'credit' THEN m.amount + m.refunded ELSE m.amount END
    FROM (SELECT n.part, n.at, n.amount, sum(n.amount) FILTER (WHERE n.part = 'refund') OVER () AS refunded
          FROM net_revenue(p) AS n) AS m
    WHERE m.part = 'payment'
       OR m.part = 'credit' AND p.credit_note_url IS NOT NULL
       OR m.part = 'refund' AND p.credit_note_url IS NULL AND (p.status = 'refunded' OR p.refunded_at IS NOT NULL)
$$;
"""

TENANT_KEY = account_key.of_name("t.name")  # the joined tenant's, inserted with each row
PROJECT = f"""
CREATE OR REPLACE FUNCTION invoice_rows_project(transactions text[]) RETURNS void LANGUAGE sql AS $$
    DELETE FROM invoice_rows WHERE transaction_id = ANY (transactions);
    INSERT INTO invoice_rows (key, kind, transaction_id, tenant_id, date, status, amount, currency, account_key)
    SELECT p.id || ':' || r.kind, r.kind, p.id, p.tenant_id, r.date, r.status, r.amount, p.currency, {TENANT_KEY}
    FROM payment_transactions AS p CROSS JOIN LATERAL invoice_rows_of(p) AS r
    LEFT JOIN tenants AS t ON t.id = p.tenant_id
    WHERE p.id = ANY (transactions);
$$;
"""

FROM_PAYMENTS = """
CREATE OR REPLACE FUNCTION invoice_rows_from_payments() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM invoice_rows_project(ARRAY(SELECT o.id FROM old_payments AS o));
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM invoice_rows_project(ARRAY(SELECT n.id FROM new_payments AS n));
    END IF;
    RETURN NULL;
END $$;
"""

TRIGGERS = """
CREATE OR REPLACE TRIGGER payment_transactions_invoice_rows_insert AFTER INSERT ON payment_transactions
    REFERENCING NEW TABLE AS new_payments FOR EACH STATEMENT EXECUTE FUNCTION invoice_rows_from_payments();
CREATE OR REPLACE TRIGGER payment_transactions_invoice_rows_update AFTER UPDATE ON payment_transactions
    REFERENCING OLD TABLE AS old_payments NEW TABLE AS new_payments FOR EACH STATEMENT
    EXECUTE FUNCTION invoice_rows_from_payments();
CREATE OR REPLACE TRIGGER payment_transactions_invoice_rows_delete AFTER DELETE ON payment_transactions
    REFERENCING OLD TABLE AS old_payments FOR EACH STATEMENT EXECUTE FUNCTION invoice_rows_from_payments();
"""


def recompute(platform_currency: str) -> Select:
    """Every payment's projected rows, keyed by the account's current name."""
    payments = PaymentTransaction.__table__
    rows = func.invoice_rows_of(payments.table_valued()).table_valued(
        column("kind", Text), column("date", DateTime(timezone=True)), column("status", Text),
        column("amount", Numeric(18, 2))).render_derived().lateral("projected")
    return select(
        (payments.c.id + ":" + rows.c.kind).label("key"), rows.c.kind, payments.c.id.label("transaction_id"),
        payments.c.tenant_id, rows.c.date, rows.c.status, rows.c.amount, payments.c.currency,
        account_key.account_key(payments.c.tenant_id).label("account_key"),
    ).select_from(payments.join(rows, true()))


MODEL = ReadModel(
    table=InvoiceListRow.__table__,
    key=("key",),
    sources=("payment_transactions", "tenants"),
    writer="triggers payment_transactions_invoice_rows_insert, _update, _delete; account key: "
           "invoice_rows_account_key, tenants_account_key",
    readers=("billing/lists/invoices.py (the invoices list, an account's invoices tab, their CSV)",),
    recompute=recompute,
    sql=(net_revenue.SQL, ROWS_OF, PROJECT, FROM_PAYMENTS, TRIGGERS, account_key.OF_ROW, account_key.FROM_TENANT,
         account_key.on_insert("invoice_rows")),
    functions=(net_revenue.SIGNATURE, "invoice_rows_of(payment_transactions)", "invoice_rows_project(text[])",
               "invoice_rows_from_payments()", *account_key.FUNCTIONS),
    triggers=(("payment_transactions", "payment_transactions_invoice_rows_insert"),
              ("payment_transactions", "payment_transactions_invoice_rows_update"),
              ("payment_transactions", "payment_transactions_invoice_rows_delete"),
              ("invoice_rows", "invoice_rows_account_key"), account_key.TENANT_TRIGGER),
)

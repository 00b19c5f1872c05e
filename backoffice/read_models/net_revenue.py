"""Net revenue, written once (DESIGN §4.10): a payment's movements as one SQL function, which the revenue queries
(billing/ledger/revenue.py), revenue_daily's trigger and the invoices' read model all call.

A payment adds its amount ex-VAT on its day; its refund takes back on the refund's day, its credit on the credit
note's (else the refund's, else the payment's). Only succeeded and refunded payments count, and a refund or
credit of nothing is no movement. The function yields all three parts of every payment, each saying whether it
counts, because the invoices list shows a failed invoice too and dates a credit note even when it credits
nothing. Migration 0015 created it; a later change is a migration copying this text.
"""
from __future__ import annotations

SIGNATURE = "net_revenue(payment_transactions)"

SQL = """
CREATE OR REPLACE FUNCTION net_revenue(p payment_transactions)
RETURNS TABLE (part text, at timestamptz, amount numeric, counted boolean) LANGUAGE sql IMMUTABLE AS $$
    SELECT m.part, m.at, m.amount, p.status IN ('succeeded', 'refunded') AND (m.part = 'payment' OR m.amount <> 0)
    FROM (VALUES ('payment', p.date, p.amount_excluding_tax),
                 ('refund', coalesce(p.refunded_at, p.date), -p.refunded_amount),
                 ('credit', coalesce(p.credit_noted_at, p.refunded_at, p.date), -p.credited_amount))
         AS m (part, at, amount)
$$;
"""

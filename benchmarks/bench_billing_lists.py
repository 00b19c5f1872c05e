"""Benchmark the cross-account billing lists: /billing-events over 2,000,000 ledger rows and /invoices.

    python -m benchmarks.bench_billing_lists [--tenants 10000] [--events 2000000] [--requests 100] [--keep NAME]

Tenants get a subscription each and an even share of ledger rows over two years, in the proportions of a real
ledger (renewals and payment rows most, plan changes some, NoOp a tenth), and monthly invoices with a few
refunds and credit notes; all COPYed in. Requests go through the app in-process (server time, no network) as
htmx requests for the list's partial. Prints p50/p95 per kind of request against the issue's 80 ms target,
for every lens, first and deep pages (offset page 1,000 and 1,000 pages deep by cursor), search and sorts.
"""
from __future__ import annotations

import argparse
import random
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

from backoffice import create_app
from backoffice.accounts.models import Tenant
from backoffice.billing.models import BillingEvent, PaymentTransaction, Subscription
from backoffice.demo.writer import copy_rows
from backoffice.extensions import db
from backoffice.operators.identity import encode_principal
from benchmarks.bench_accounts import report, timed, vacuum
from benchmarks.common import kept_database, scratch_database

NOW = datetime.now(UTC)
TARGET = 80.0
# (event type, movement sign, weight): what a ledger is mostly made of.
KINDS = [("SubscriptionRenewed", 0, 40), ("PaymentMethodUpdated", 0, 8), ("BillingInfoUpdated", 0, 6),
         ("NoOp", 0, 10), ("PaymentFailed", 0, 4), ("PaymentRecovered", 0, 3), ("SubscriptionPastDue", 0, 3),
         ("SubscriptionUpgraded", 1, 8), ("SubscriptionDowngraded", -1, 5), ("SubscriptionDowngradeScheduled", -1, 4),
         ("SubscriptionCancelled", -1, 4), ("SubscriptionReactivated", 1, 3), ("PaymentRefunded", 0, 2)]
WORDS = ("Nordic", "Harbor", "Granite", "Juniper", "Lumen", "Orchid", "Pioneer", "Quartz", "Summit", "Tundra",
         "Fjord", "Birch", "Cedar", "Delta", "Ember", "Falcon")


def ledger_rows(rng: random.Random, tenant_id: str, subscription_id: str, count: int, since: datetime) -> list[dict]:
    """A consistent chain of `count` rows: created first, then the weighted mix, committed MRR carried on."""
    kinds, weights = [k for k, _, _ in KINDS], [w for _, _, w in KINDS]
    signs = {k: s for k, s, _ in KINDS}
    step = (NOW - since) / count
    committed = Decimal("49.00")
    rows = [{"id": f"bev_{subscription_id}_0", "tenant_id": tenant_id, "subscription_id": subscription_id,
             "stripe_event_id": f"evt_{subscription_id}_0", "event_type": "SubscriptionCreated", "from_plan": None,
             "to_plan": "standard", "previous_amount": Decimal("0.00"), "new_amount": committed,
             "amount_delta": committed, "committed_mrr": committed, "movement": "new", "currency": "EUR",
             "occurred_at": since, "position": 0, "created_at": NOW}]
    for index in range(1, count):
        kind = rng.choices(kinds, weights)[0]
        sign = signs[kind]
        row = {"id": f"bev_{subscription_id}_{index}", "tenant_id": tenant_id, "subscription_id": subscription_id,
               "stripe_event_id": f"evt_{subscription_id}_{index}", "event_type": kind, "from_plan": "standard",
               "to_plan": "standard", "previous_amount": None, "new_amount": None, "amount_delta": None,
               "committed_mrr": committed, "movement": None, "currency": "EUR",
               "occurred_at": since + step * index, "position": 0, "created_at": NOW}
        if sign:
            new = max(Decimal("0.00"), committed + sign * Decimal("50.00"))
            movement = {1: "expansion", -1: "churn" if kind == "SubscriptionCancelled" else "contraction"}[sign]
            row.update(previous_amount=committed, new_amount=new, amount_delta=new - committed, committed_mrr=new,
                       movement=movement if new != committed else None)
            committed = new
        rows.append(row)
    return rows


def load(tenants: int, events: int) -> dict[str, int]:
    rng = random.Random(5)
    per_tenant = max(2, events // tenants)
    counts = {"tenants": 0, "subscriptions": 0, "billing_events": 0, "payment_transactions": 0}
    batch = 500
    for start in range(0, tenants, batch):
        tenant_rows, subscriptions, ledger, payments = [], [], [], []
        for number in range(start, min(tenants, start + batch)):
            tenant_id, subscription_id = f"ten_{number:06d}", f"sub_{number:06d}"
            since = NOW - timedelta(days=730 - rng.randint(0, 60))
            deleted = NOW - timedelta(days=3) if rng.random() < 0.02 else None
            tenant_rows.append({"id": tenant_id, "name": f"{rng.choice(WORDS)} {rng.choice(WORDS)} {number}",
                                "created_at": since, "deleted_at": deleted, "state": "active", "plan": "standard",
                                "country": "DK"})
            subscriptions.append({"id": subscription_id, "tenant_id": tenant_id, "stripe_customer_id": f"cus_{number}",
                                  "plan": "standard", "status": "active", "current_price_amount": Decimal("49.00"),
                                  "current_price_currency": "EUR", "forward_mrr": Decimal("49.00"),
                                  "account_status": "active", "cancel_at_period_end": False,
                                  "drift_discrepancies": "[]", "has_drift_detected": False, "created_at": since})
            ledger += ledger_rows(rng, tenant_id, subscription_id, per_tenant, since)
            for month in range(24):
                refunded, credited = rng.random() < 0.03, rng.random() < 0.02
                payments.append({
                    "id": f"in_{number}_{month}", "subscription_id": subscription_id, "tenant_id": tenant_id,
                    "amount": Decimal("61.25"), "amount_excluding_tax": Decimal("49.00"), "tax_amount": Decimal("12.25"),
                    "invoice_total": Decimal("61.25"), "amount_from_credit": Decimal("0.00"),
                    "refunded_amount": Decimal("49.00") if refunded else Decimal("0.00"),
                    "credited_amount": Decimal("49.00") if credited and not refunded else Decimal("0.00"),
                    "credit_note_url": "https://pay.example/cn.pdf" if credited and not refunded else None,
                    "credit_noted_at": since + timedelta(days=30 * month + 3) if credited and not refunded else None,
                    "currency": "EUR", "status": "refunded" if refunded else "succeeded",
                    "date": since + timedelta(days=30 * month), "plan": "standard",
                    "refunded_at": since + timedelta(days=30 * month + 2) if refunded else None, "created_at": NOW})
        counts["tenants"] += copy_rows(db.session, Tenant.__table__, tenant_rows)
        counts["subscriptions"] += copy_rows(db.session, Subscription.__table__, subscriptions)
        counts["billing_events"] += copy_rows(db.session, BillingEvent.__table__, ledger)
        counts["payment_transactions"] += copy_rows(db.session, PaymentTransaction.__table__, payments)
        db.session.commit()
    return counts


def deep_by_cursor(client, path: str, headers: dict[str, str], pages: int) -> str:
    """Follow Next links `pages` times from `path`; return the last page's URL (its `after` cursor in it)."""
    url = path
    for page in range(2, pages + 1):
        body = client.get(url, headers=headers).get_data(as_text=True)
        link = body.split('rel="next"', 1)[0].rsplit('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
        after = parse_qs(urlsplit(link).query)["after"][0]
        url = f"{path}{'&' if '?' in path else '?'}page={page}&after={after}"
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--keep", metavar="DATABASE", help="load into this database once, keep it, and reuse it")
    options = parser.parse_args()
    rng = random.Random(3)
    with (kept_database(options.keep) if options.keep else scratch_database()) as url:
        app = create_app({"SQLALCHEMY_DATABASE_URI": url, "TRUST_PROXY_HEADERS": True, "LOG_LEVEL": "WARNING",
                          "PUBLIC_SUBSCRIPTION_ENABLED": True, "BACKOFFICE_ADMINS_GROUP_ID": "admins"})
        with app.app_context():
            from flask_migrate import upgrade

            upgrade()
            if db.session.execute(db.text("SELECT count(*) FROM tenants")).scalar() == 0:
                started = time.perf_counter()
                counts = load(options.tenants, options.events)
                print(f"loaded in {time.perf_counter() - started:.0f} s: "
                      + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
                vacuum(url)
            total = db.session.execute(db.text("SELECT count(*) FROM billing_events")).scalar()
        headers = {"X-MS-CLIENT-PRINCIPAL-NAME": "bench@example.com",
                   "X-MS-CLIENT-PRINCIPAL": encode_principal([("groups", "admins"), ("name", "Bench")]),
                   "HX-Request": "true"}
        client = app.test_client()
        timed(client, ["/billing-events"] * 10 + ["/invoices"] * 10, headers)
        n = options.requests
        print(f"\n{total:,} ledger rows; {n} requests per line; milliseconds of server time (in-process WSGI)")
        print(f"{'request':<44}{'n':>6}{'p50':>10}{'p95':>10}{'max':>10}")
        everything = []
        for lens in ("", "lens=mrr", "lens=state", "lens=other"):
            for label, page in (("page 1", 1), ("pages 2-50", None), ("page 1000", 1000)):
                paths = [f"/billing-events?{lens}&page={page or rng.randint(2, 50)}" for _ in range(n // 2)]
                timings = timed(client, paths, headers)
                everything += timings
                report(f"billing events {lens or 'all'} {label}", timings, TARGET)
        deep = deep_by_cursor(client, "/billing-events", headers, 1000)
        report("billing events, cursor 1,000 pages deep", timed(client, [deep] * (n // 2), headers), TARGET)
        words = [w.lower()[:rng.randint(3, 6)] for w in rng.choices(WORDS, k=n // 2)]
        report("billing events search", timed(client, [f"/billing-events?q={w}" for w in words], headers), TARGET)
        for query in ("type=SubscriptionUpgraded&type=SubscriptionDowngraded", "movement=churn&period=30",
                      "period=7", "lens=mrr&period=90", "sort=-date", "sort=date"):
            timings = timed(client, [f"/billing-events?{query}"] * (n // 2), headers)
            everything += timings
            report(f"billing events {query}", timings, TARGET)
        report("billing events sort=account (page 1)", timed(client, ["/billing-events?sort=account"] * 10, headers),
               None)
        report("billing events, every lens and page above", everything, TARGET)
        for query in ("", "kind=invoices", "kind=reversals", "page=1000", "q=fjord"):
            report(f"invoices {query or 'all'}", timed(client, [f"/invoices?{query}"] * (n // 2), headers), TARGET)
        started = time.perf_counter()
        size = len(client.get("/billing-events.csv?lens=mrr", headers=headers).get_data())
        print(f"\nCSV of the MRR lens: {size / 1e6:.1f} MB in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()

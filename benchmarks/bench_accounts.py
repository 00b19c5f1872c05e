"""Benchmark the accounts surfaces at scale: the list under every filter and sort, search, detail, CSV.

    python -m benchmarks.bench_accounts [--tenants 100000] [--requests 200]

Tenants and their users come from the demo's people generator (logins and sessions are left out: the
accounts pages do not read them); each tenant then gets a subscription drawn from the demo's plan mix, a
ledger row when it ever paid, and a year of invoices, all COPYed in. Requests go through the app
in-process (the server time of a request, no network), as an htmx request for the list's partial.
Prints p50/p95 per kind of request against the issue's targets, and the peak memory of the CSV export.
"""
from __future__ import annotations

import argparse
import random
import resource
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from backoffice.accounts.models import Tenant, User
from backoffice.billing.models import BillingEvent, PaymentTransaction, Subscription
from backoffice.demo.people import PeopleGenerator, PeopleMix
from backoffice.demo.writer import copy_rows
from backoffice.extensions import db
from benchmarks.web_bench import HEADERS, PARTIAL, arguments, loaded_app, report, timed

NOW = datetime.now(UTC)
PRICES = {"standard": Decimal("49.00"), "premium": Decimal("99.00")}
TARGETS = {"list": 80.0, "search": 50.0, "detail": 100.0}


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def billing_rows(rng: random.Random, tenant: dict) -> tuple[dict | None, list[dict], list[dict]]:
    """A subscription in the demo's proportions, its first ledger row, and its invoices."""
    draw = rng.random()
    if draw < 0.35:
        return None, [], []
    sub_id = "subscr_" + tenant["id"][4:]
    plan = rng.choice(("standard", "standard", "premium")) if draw < 0.85 else None
    price = PRICES[plan] if plan else None
    status, scheduled, canceling = "active", None, False
    if plan and rng.random() < 0.06:
        scheduled = "standard" if plan == "premium" else "basis"
    elif plan and rng.random() < 0.05:
        canceling = True
    account_status = ("canceling" if canceling else "downgrading" if scheduled else "active") if plan else "canceled"
    forward = Decimal("0.00") if canceling or not plan else (PRICES.get(scheduled, Decimal("0.00")) if scheduled else price)
    since = tenant["created_at"] + timedelta(days=rng.randint(0, 30))
    subscription = {
        "id": sub_id, "tenant_id": tenant["id"], "created_at": since, "stripe_customer_id": "cus_" + tenant["id"][4:],
        "status": status if plan else "canceled", "plan": plan, "scheduled_plan": scheduled,
        "current_price_amount": price, "current_price_currency": "EUR" if plan else None,
        "scheduled_price_amount": PRICES.get(scheduled) if scheduled else None,
        "current_period_end": NOW + timedelta(days=rng.randint(0, 30)) if plan else None,
        "cancel_at_period_end": canceling, "subscribed_since": since, "forward_mrr": forward,
        "account_status": account_status, "has_drift_detected": rng.random() < 0.01, "drift_discrepancies": "[]",
    }
    unsynced = plan is not None and rng.random() < 0.03
    ledger = [] if unsynced else [{
        "id": "bilevt_" + tenant["id"][4:], "tenant_id": tenant["id"], "subscription_id": sub_id,
        "stripe_event_id": "evt_" + tenant["id"][4:], "event_type": "SubscriptionCreated", "from_plan": None,
        "to_plan": plan or "standard", "previous_amount": Decimal("0.00"), "new_amount": price or PRICES["standard"],
        "amount_delta": price or PRICES["standard"], "committed_mrr": price or PRICES["standard"], "movement": "new",
        "currency": "EUR", "occurred_at": since, "position": 1, "created_at": NOW,
    }]
    invoices = []
    for month in range(rng.randint(1, 12)):
        amount = price or PRICES["standard"]
        refunded = rng.random() < 0.03
        invoices.append({
            "id": f"in_{tenant['id'][4:]}_{month}", "subscription_id": sub_id, "tenant_id": tenant["id"],
            "amount": amount * Decimal("1.25"), "amount_excluding_tax": amount, "tax_amount": amount / 4,
            "invoice_total": amount * Decimal("1.25"), "amount_from_credit": Decimal("0.00"),
            "refunded_amount": amount if refunded else Decimal("0.00"), "credited_amount": Decimal("0.00"),
            "currency": "EUR", "status": "refunded" if refunded else "succeeded",
            "date": since + timedelta(days=30 * month), "plan": plan or "standard",
            "refunded_at": since + timedelta(days=30 * month + 2) if refunded else None, "created_at": NOW,
        })
    return subscription, ledger, invoices


def load(tenants: int) -> dict[str, int]:
    """Generate and COPY the dataset; return row counts."""
    rng = random.Random(7)
    people = PeopleGenerator(7, NOW, PeopleMix(max_members=12))
    counts = {"tenants": 0, "users": 0, "subscriptions": 0, "billing_events": 0, "payment_transactions": 0}
    batch = 5000
    for start in range(0, tenants, batch):
        tenant_rows, users, subscriptions, ledger, payments = [], [], [], [], []
        for _ in range(min(batch, tenants - start)):
            created = NOW - timedelta(days=rng.randint(1, 900))
            deleted = NOW - timedelta(days=1) if rng.random() < 0.02 else None
            records = people.tenant(created, deleted_at=deleted)
            tenant = records.tenant
            subscription, rows, invoices = billing_rows(rng, tenant)
            tenant["plan"] = (subscription or {}).get("plan") or "basis"
            tenant_rows.append(tenant)
            users.extend(records.users)
            if subscription:
                subscriptions.append(subscription)
                ledger.extend(rows)
                payments.extend(invoices)
        counts["tenants"] += copy_rows(db.session, Tenant.__table__, tenant_rows)
        counts["users"] += copy_rows(db.session, User.__table__, users)
        counts["subscriptions"] += copy_rows(db.session, Subscription.__table__, subscriptions)
        counts["billing_events"] += copy_rows(db.session, BillingEvent.__table__, ledger)
        counts["payment_transactions"] += copy_rows(db.session, PaymentTransaction.__table__, payments)
        db.session.commit()
    db.session.commit()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=100_000)
    options = arguments(parser)
    rng = random.Random(11)
    with loaded_app(options.keep, "tenants", lambda: load(options.tenants)) as (app, _url):
        with app.app_context():
            names = [name for (name,) in db.session.execute(db.text("SELECT name FROM tenants WHERE deleted_at IS NULL"))]
            ids = [tid for (tid,) in db.session.execute(db.text("SELECT id FROM tenants WHERE deleted_at IS NULL"))]
        headers, partial = HEADERS, PARTIAL
        client = app.test_client()
        timed(client, ["/accounts"] * 20, partial)  # warm the pool and the templates
        n = options.requests
        sorts = ["name", "plan", "mrr", "renewal", "status", "country", "created"]
        filters = ["", "plan=premium", "plan=standard&plan=premium", "status=downgrading&status=canceling",
                   "status=active", "status=free", "unsynced=true", "driftDetected=true", "plan=premium&status=active"]
        print(f"\n{options.tenants:,} tenants; {n} requests per line; milliseconds of server time (in-process WSGI)")
        print(f"{'request':<34}{'n':>6}{'p50':>10}{'p95':>10}{'max':>10}")
        every_list = []
        for sort in sorts:
            paths = [f"/accounts?sort={rng.choice(('', '-'))}{sort}&{rng.choice(filters)}"
                     for _ in range(n // 4)]
            timings = timed(client, paths, partial)
            every_list += timings
            report(f"list sort={sort} (any filter)", timings, TARGETS["list"])
        for flt in filters[1:]:
            timings = timed(client, [f"/accounts?{flt}&sort={rng.choice(sorts)}" for _ in range(n // 4)], partial)
            every_list += timings
            report(f"list {flt}", timings, TARGETS["list"])
        report("list, all of the above", every_list, TARGETS["list"])
        last = max(1, len(ids) // 25)
        deep = timed(client, [f"/accounts?page={rng.randint(last // 2, last)}" for _ in range(n // 4)], partial)
        report(f"list, deep offset pages ({last // 2}-{last})", deep, None)
        fragments = [name.lower()[start:start + rng.randint(3, 6)]
                     for name in rng.sample(names, n) for start in [rng.randint(0, max(0, len(name) - 6))]]
        report("search name fragment", timed(client, [f"/accounts?q={f}" for f in fragments], partial), TARGETS["search"])
        report("search exact id", timed(client, [f"/accounts?q={i}" for i in rng.sample(ids, n)], partial),
               TARGETS["search"])
        report("detail page", timed(client, [f"/accounts/{i}" for i in rng.sample(ids, n)], headers), TARGETS["detail"])
        report("side pane", timed(client, [f"/accounts/{i}/pane" for i in rng.sample(ids, n)], partial), TARGETS["detail"])
        before = rss_mib()
        started = time.perf_counter()
        response = client.get("/accounts.csv", headers=headers, buffered=False)
        lines = sum(chunk.count(b"\n") for chunk in response.iter_encoded())
        elapsed = time.perf_counter() - started
        print(f"\nCSV export: {lines - 1:,} rows in {elapsed:.1f} s; peak RSS {before:.0f} MiB before, {rss_mib():.0f} MiB after")


if __name__ == "__main__":
    main()

"""Benchmark the shell's global search (/search, the htmx partial) and the lists' id searches at scale.

    python -m benchmarks.bench_global_search [--tenants 10000] [--events 500000] [--requests 200] [--keep NAME]

The billing lists' dataset (bench_billing_lists.load: tenants, subscriptions, ledger rows, 24 monthly invoices
each) plus an owner per account and the archive Stripe would have sent for it: per invoice an invoice.paid and a
charge.succeeded, a refund.created (naming only its charge) for the refunded ones, a credit_note.created for the
credited ones. Prints p50/p95 per kind of pasted id, an owner's address and a name fragment, against 80 ms.
"""
from __future__ import annotations

import argparse
import json
import random
from datetime import UTC, datetime

from backoffice.accounts.models import User
from backoffice.billing.models import StripeEvent
from backoffice.demo.writer import copy_rows
from backoffice.extensions import db
from benchmarks.bench_billing_lists import load as load_lists
from benchmarks.web_bench import PARTIAL, arguments, loaded_app, report, timed

TARGET = 80.0
NOW = datetime.now(UTC)


def _event(sequence: int, event_id: str, kind: str, obj: dict, customer: str | None, tenant: str | None) -> dict:
    return {"id": event_id, "sequence": sequence, "received_at": NOW, "stripe_created_at": NOW, "type": kind,
            "api_version": "2025-03-31.basil", "stripe_customer_id": customer, "stripe_subscription_id": None,
            "tenant_id": tenant, "payload": json.dumps({"id": event_id, "type": kind, "data": {"object": obj}}),
            "payload_hash": "d" * 64, "status": "processed", "processed_at": NOW, "error": None, "recovered_at": None,
            "recovery_source": None}


def load(tenants: int, events: int) -> dict[str, int]:
    counts = load_lists(tenants, events)
    payments = db.session.execute(db.text(
        "SELECT p.id, p.tenant_id, s.stripe_customer_id, p.refunded_amount > 0, p.credited_amount > 0 "
        "FROM payment_transactions p JOIN subscriptions s ON s.id = p.subscription_id ORDER BY p.id")).all()
    archive, sequence = [], 0
    counts["stripe_events"] = 0
    for invoice, tenant, customer, refunded, credited in payments:
        suffix = invoice.removeprefix("in_")
        rows = [("invoice.paid", {"id": invoice, "object": "invoice", "customer": customer}, customer, tenant),
                ("charge.succeeded", {"id": f"ch_{suffix}", "object": "charge", "invoice": invoice,
                                      "customer": customer}, customer, tenant)]
        if refunded:
            rows.append(("refund.created", {"id": f"re_{suffix}", "object": "refund", "charge": f"ch_{suffix}"},
                         None, None))
        if credited:
            rows.append(("credit_note.created", {"id": f"cn_{suffix}", "object": "credit_note", "invoice": invoice,
                                                 "customer": customer}, customer, tenant))
        for kind, obj, named_customer, named_tenant in rows:
            sequence += 1
            archive.append(_event(sequence, f"evt_{sequence:09d}", kind, obj, named_customer, named_tenant))
        if len(archive) >= 20_000:
            counts["stripe_events"] += copy_rows(db.session, StripeEvent.__table__, archive)
            archive = []
    counts["stripe_events"] += copy_rows(db.session, StripeEvent.__table__, archive)
    owners = [{"id": f"usr_{number:06d}", "tenant_id": f"ten_{number:06d}", "email": f"owner{number}@bench.example",
               "first_name": "Owner", "last_name": str(number), "title": None, "role": "owner",
               "email_confirmed": True, "created_at": NOW, "modified_at": None, "last_seen_at": None,
               "deleted_at": None, "avatar": None} for number in range(tenants)]
    counts["users"] = copy_rows(db.session, User.__table__, owners)
    db.session.commit()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=500_000)
    options = arguments(parser)
    rng = random.Random(7)
    with loaded_app(options.keep, "stripe_events", lambda: load(options.tenants, options.events)) as (app, _):
        with app.app_context():
            archived = db.session.execute(db.text("SELECT count(*) FROM stripe_events")).scalar()
            refunds = db.session.scalars(db.text(
                "SELECT payload->'data'->'object'->>'id' FROM stripe_events WHERE type = 'refund.created' LIMIT 500")).all()
            notes = db.session.scalars(db.text(
                "SELECT payload->'data'->'object'->>'id' FROM stripe_events WHERE type = 'credit_note.created' "
                "LIMIT 500")).all()
            events = db.session.scalars(db.text("SELECT id FROM stripe_events ORDER BY random() LIMIT 500")).all()
        client = app.test_client()
        n = options.requests
        numbers = [rng.randrange(options.tenants) for _ in range(n)]
        queries = {
            "customer cus_": [f"cus_{k}" for k in numbers],
            "subscription (ours) ten_": [f"ten_{k:06d}" for k in numbers],
            "invoice in_": [f"in_{k}_{rng.randrange(24)}" for k in numbers],
            "charge ch_": [f"ch_{k}_{rng.randrange(24)}" for k in numbers],
            "refund re_": [rng.choice(refunds) for _ in numbers] if refunds else [],
            "credit note cn_": [rng.choice(notes) for _ in numbers] if notes else [],
            "event evt_": [rng.choice(events) for _ in numbers],
            "owner's email": [f"owner{k}@bench.example" for k in numbers],
            "unknown id": [f"cus_Nobody{k}" for k in numbers],
            "name fragment": [rng.choice(("fjord", "harbor", "summit", "quartz")) for _ in numbers],
        }
        timed(client, ["/search?q=cus_1"] * 10, PARTIAL)
        print(f"\n{archived:,} archived events; /search partial; milliseconds of server time (in-process WSGI)")
        print(f"{'search':<38}{'n':>6}{'p50':>10}{'p95':>10}{'max':>10}")
        for label, values in queries.items():
            if values:
                report(label, timed(client, [f"/search?q={value}" for value in values], PARTIAL), TARGET)
        for path in ("/accounts", "/billing-events", "/invoices"):
            report(f"{path} by charge id", timed(client, [f"{path}?q=ch_{k}_3" for k in numbers[:n // 2]], PARTIAL),
                   TARGET)


if __name__ == "__main__":
    main()

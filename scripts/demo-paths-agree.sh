#!/usr/bin/env bash
# The demo loaded two ways, its ledgers compared tenant by tenant: in-process (what `make demo` does) and the
# Procfile way (a served sandbox and a running RQ worker replaying as the webhooks arrive). Both sandboxes start
# their clocks N months ago, so Stripe's side is the same; the ledgers, projections and payments must be too.
#   N=40 M=6 SEED=3 bash scripts/demo-paths-agree.sh    (PostgreSQL and Redis on loopback; drops databases pa, pb)
set -u
cd "$(dirname "$0")/.."
N=${N:-40}; M=${M:-6}; SEED=${SEED:-3}
export FLASK_APP=wsgi:app SECRET_KEY=paths-agree PUBLIC_SUBSCRIPTION_ENABLED=true LOG_FORMAT=text LOG_LEVEL=WARNING
VAT=$(.venv/bin/python -c 'from backoffice.demo.commands import DEMO_VAT_RATES; print(DEMO_VAT_RATES)')
for db in pa pb; do psql -h 127.0.0.1 -U postgres -qc "drop database if exists $db" -c "create database $db"; done
rm -f /tmp/pb-sandbox.json
( export DATABASE_URL=postgresql://postgres@127.0.0.1/pa REDIS_URL=; .venv/bin/flask db upgrade >/dev/null 2>&1
  .venv/bin/flask demo load --tenants $N --months $M --seed $SEED ) > /tmp/pa.log 2>&1
export DATABASE_URL=postgresql://postgres@127.0.0.1/pb REDIS_URL=redis://127.0.0.1:6379/7
redis-cli -n 7 flushdb >/dev/null
.venv/bin/flask db upgrade >/dev/null 2>&1
CLOCK=$(.venv/bin/python -c "import time; from backoffice.demo.generator import MONTH; print(int(time.time()) - $M * MONTH)")
.venv/bin/flask sandbox serve --port 12199 --state /tmp/pb-sandbox.json --vat "$VAT" --clock $CLOCK > /tmp/pb-sandbox.log 2>&1 &
SB=$!
sleep 3
export STRIPE_API_BASE=http://127.0.0.1:12199 STRIPE_SECRET_KEY=sk_test_sandbox SETTLE_SECONDS=1
.venv/bin/python worker.py > /tmp/pb-worker.log 2>&1 &
WK=$!
.venv/bin/flask demo load --tenants $N --months $M --seed $SEED > /tmp/pb.log 2>&1
sleep 5
kill $WK; kill $SB; wait
.venv/bin/python - <<'PY'
import sqlalchemy as sa
def ledger(db):
    e = sa.create_engine(f"postgresql://postgres@127.0.0.1/{db}")
    with e.connect() as c:
        rows = c.execute(sa.text("select tenant_id, event_type, from_plan, to_plan, previous_amount, new_amount, amount_delta, committed_mrr, movement from effective_billing_events order by tenant_id, occurred_at, position, event_type")).all()
        subs = c.execute(sa.text("select tenant_id, plan, scheduled_plan, forward_mrr, account_status from subscriptions order by 1")).all()
        pays = c.execute(sa.text("select tenant_id, amount_excluding_tax, refunded_amount, credited_amount, status, plan from payment_transactions order by 1, date, amount")).all()
    out = {}
    for r in rows: out.setdefault(r[0], []).append(tuple(r[1:]))
    return out, subs, pays
a, sa_, pa = ledger("pa"); b, sb, pb = ledger("pb")
diff = [t for t in set(a) | set(b) if a.get(t) != b.get(t)]
print("tenants with ledgers:", len(a), len(b), "rows:", sum(map(len, a.values())), sum(map(len, b.values())))
print("tenants whose ledgers differ:", len(diff))
for t in diff[:3]:
    print(t); print(" in-process:", [x[0] for x in a.get(t, [])]); print(" worker:    ", [x[0] for x in b.get(t, [])])
print("projections equal:", sa_ == sb, "payments equal:", pa == pb)
raise SystemExit(1 if diff or sa_ != sb or pa != pb else 0)
PY
agree=$?
# The worker's incremental replays (late events, corrections) against one recomputation of the same archive.
DATABASE_URL=postgresql://postgres@127.0.0.1/pb STRIPE_API_BASE= .venv/bin/flask billing verify | tail -1
verified=${PIPESTATUS[0]}
exit $(( agree || verified ))

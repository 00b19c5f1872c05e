#!/usr/bin/env bash
# `make demo`: the app with demo data on the development defaults — embedded PostgreSQL and a kept secret key
# (backoffice/dev.py), jobs in-process, the development login — and the Stripe sandbox beside it on 127.0.0.1:12111.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
STATE=instance/sandbox.json
SECRET_FILE=instance/webhook-secret
SANDBOX_PORT=${SANDBOX_PORT:-12111}

export FLASK_APP=backoffice.dev DATABASE_URL= REDIS_URL= BACKOFFICE_DEV_LOGIN=1 PUBLIC_SUBSCRIPTION_ENABLED=true \
  BACKOFFICE_ADMINS_GROUP_ID=backoffice-admins LOG_FORMAT=text
mkdir -p instance
# The demo's VAT rates, for the sandbox that loads the data and the one that serves it afterwards.
SANDBOX_VAT_RATES=${SANDBOX_VAT_RATES:-$("$BIN/python" -c 'from backoffice.demo.commands import DEMO_VAT_RATES; print(DEMO_VAT_RATES)')}
export SANDBOX_VAT_RATES

# As the embedded server's owner (backoffice.dev sets MIGRATION_DATABASE_URL); everything after runs as its runtime
# role, backoffice_app, which owns nothing and cannot switch the ledger's append-only triggers off.
if ! "$BIN/flask" db upgrade > instance/migrate.log 2>&1; then cat instance/migrate.log >&2; exit 1; fi
echo "Database migrated (instance/migrate.log)"
tenants=$("$BIN/python" - <<'PY'
from backoffice.dev import create_app
from backoffice.accounts.models import Tenant
from backoffice.extensions import db
with create_app().app_context():
    print(db.session.query(Tenant).count())
PY
)
if [ "$tenants" = 0 ] && [ ! -e "$STATE" ]; then
  "$BIN/flask" demo load --tenants "${DEMO_TENANTS:-200}" --months "${DEMO_MONTHS:-14}" --sandbox-state "$STATE" \
    --webhook-secret-file "$SECRET_FILE" --serve-url "http://127.0.0.1:5000/webhooks/stripe"
elif [ "$tenants" = 0 ] || [ ! -e "$STATE" ]; then
  echo "demo: the database and $STATE disagree (one is empty); run 'make demo-reset' to start over" >&2
  exit 1
fi

# The sandbox's own lines (its address, an export line the script has already done) go to its log.
"$BIN/flask" sandbox serve --port "$SANDBOX_PORT" --state "$STATE" > instance/sandbox.log 2>&1 &
sandbox=$!
app=
trap 'kill $sandbox $app 2>/dev/null; wait 2>/dev/null' EXIT
export STRIPE_API_BASE="http://127.0.0.1:$SANDBOX_PORT" STRIPE_SECRET_KEY=sk_test_sandbox
# The sandbox's webhook endpoint signs with this secret; the app checks deliveries against it.
if [ -e "$SECRET_FILE" ]; then STRIPE_WEBHOOK_SECRETS=$(cat "$SECRET_FILE"); export STRIPE_WEBHOOK_SECRETS; fi
"$BIN/flask" run --host 127.0.0.1 --port 5000 &
app=$!
# The last line the operator reads says where to go, once the app answers there.
"$BIN/python" - <<'PY'
import time, urllib.request
for _ in range(120):
    try:
        urllib.request.urlopen("http://127.0.0.1:5000/healthz", timeout=1)
        break
    except OSError:
        time.sleep(0.5)
PY
echo "Open http://127.0.0.1:5000 — sign in as admin or operator (Ctrl-C stops the demo)"
wait "$app"

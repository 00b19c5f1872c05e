"""The read models (docs/read-models.md) against their sources: each equals its recomputation after a random mix
of writes through the real code paths; a row broken by hand is found, alone, and rebuilt; the SQL each module
keeps is the SQL the migrations leave in the database; the `flask db` commands say so in their exit codes."""
from __future__ import annotations

import random
import re
import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import and_, delete, func, insert, or_, select, text, true, update

from backoffice.accounts.models import Login, Tenant, User
from backoffice.billing.models import BillingEventCorrection, PaymentTransaction
from backoffice.demo.people import PeopleGenerator
from backoffice.demo.scenarios import SCENARIOS
from backoffice.demo.writer import write_records
from backoffice.extensions import db
from backoffice.read_models import NAMES, REGISTRY, repair, select_models
from tests.factories import make_subscription, make_tenant, payment_values

NOW = datetime(2026, 4, 1, tzinfo=UTC)
FAR = date(2099, 1, 1)  # a day no write reaches: an extra row put there is the only one
MONEY_SCENARIOS = ("full_refund", "partial_refund", "credit_note_with_refund", "credit_note_then_void")
# The triggers and functions that guard the append-only tables (DESIGN §4.7): they derive no table.
GUARDS = {"refuse_append_only_change()", "guard_stripe_event_update()", "guard_stripe_event_payload()",
          "guard_stripe_event_state_update()",
          # Not a read model either: every archived event's state, opened as it is archived (migration 0024).
          "stripe_event_states_open()"}
# Rules the reports apply, kept in SQL so that Python asks rather than repeats them (backoffice/fx).
RULES = {"fx_rate(text,text,date)"}


def clean(session) -> dict[str, list[repair.Difference]]:
    """The differences of every read model that has any."""
    found = {model.name: repair.differences(session, model, "EUR") for model in REGISTRY}
    return {name: rows for name, rows in found.items() if rows}


def stripe_lifecycles(harness, rng: random.Random, seed: int) -> None:
    """Accounts through the sandbox and the real webhook, delivered out of order in batches replayed in between,
    so that later events correct earlier rows."""
    names = [*rng.sample(sorted(SCENARIOS), 3), rng.choice(MONEY_SCENARIOS)]
    for index, name in enumerate(names):
        SCENARIOS[name](harness.demo, harness.tenant(f"ten_rm{seed}_{index}", f"Account {seed}-{index}"))
    harness.sandbox.webhooks.wait_idle()
    deliveries = list(harness.receiver.received)
    harness.delivered = len(deliveries)
    for start in range(0, len(deliveries), 3):
        for received in deliveries[start:start + 3][::-1]:
            response = harness.client.post("/webhooks/stripe", data=received.body, headers={
                "Stripe-Signature": received.headers["Stripe-Signature"], "Content-Type": "application/json"})
            assert response.status_code == 200
        harness.replay()


def product_changes(session, rng: random.Random, seed: int) -> None:
    """The SaaS's own records as the demo writes them, then changed as the SaaS changes them."""
    people = PeopleGenerator(seed, NOW)
    write_records(session, [people.tenant(NOW - timedelta(days=rng.randint(20, 300))) for _ in range(3)])
    tenants = session.scalars(select(Tenant.id).order_by(Tenant.id)).all()
    for tenant_id in rng.sample(tenants, 2):
        session.execute(update(Tenant).where(Tenant.id == tenant_id).values(name=Tenant.name + " Renamed"))
    deleted, restored = rng.sample(tenants, 2)
    session.execute(update(Tenant).where(Tenant.id.in_((deleted, restored))).values(deleted_at=NOW))
    session.execute(update(Tenant).where(Tenant.id == restored).values(deleted_at=None))
    users = session.scalars(select(User.id).order_by(User.id)).all()
    for user_id in rng.sample(users, min(4, len(users))):
        seen = NOW - timedelta(days=rng.randint(0, 40), hours=rng.randint(0, 23))
        session.execute(update(User).where(User.id == user_id).values(last_seen_at=seen))
    session.execute(update(User).where(User.id == rng.choice(users)).values(deleted_at=NOW))
    logins = session.scalars(select(Login.id).order_by(Login.id)).all()
    session.execute(update(Login).where(Login.id.in_(rng.sample(logins, min(3, len(logins))))).values(outcome="succeeded"))
    session.execute(delete(Login).where(Login.id == rng.choice(logins)))
    session.commit()


def key_of(model, key: tuple) -> object:
    return and_(*(model.table.c[name] == value for name, value in zip(model.key, key, strict=True)))


def pick(session, model, rng: random.Random) -> tuple:
    """A random row of the table that stands for something (not an all-zero running sum)."""
    table = model.table
    rows = session.execute(select(*(table.c[name] for name in model.key))
                           .where(or_(*(table.c[name] != value for name, value in model.empty.items()))
                                  if model.empty else true())
                           .order_by(*(table.c[name] for name in model.key))).all()
    assert rows, f"the mix left {model.name} empty"
    return tuple(rng.choice(rows))


def break_one(session, model, rng: random.Random) -> tuple[str, tuple]:
    """Break one row by hand as this table is likeliest to break: a row changed, lost, or left behind."""
    table = model.table
    if model.name in ("mrr_daily", "user_seen_daily"):
        row = {"day": FAR, "currency": "EUR", "movement": "new", "delta_sum": Decimal("5.00"), "event_count": 1,
               "users": 3}
        session.execute(insert(table).values({name: row[name] for name in table.columns.keys()}))
        return "extra", tuple(row[name] for name in model.key)
    key = pick(session, model, rng)
    if model.name in ("ledger_index", "revenue_daily"):
        session.execute(delete(table).where(key_of(model, key)))
        return "missing", key
    column = {"account_index": "mrr", "account_month_totals": "mrr", "ledger_tips": "committed_mrr", "account_months": "mrr_end",
              "invoice_rows": "amount", "invoice_totals": "amount", "login_daily": "succeeded"}[model.name]
    session.execute(update(table).where(key_of(model, key))
                    .values({column: func.coalesce(table.c[column], 0) + 1}))
    return "differs", key


@pytest.mark.parametrize("name", NAMES)
def test_a_read_model_equals_its_recomputation_and_a_broken_row_is_found_and_rebuilt(harness, app, name):
    seed = NAMES.index(name)
    rng = random.Random(seed)
    stripe_lifecycles(harness, rng, seed)
    with app.app_context():
        session = db.session
        product_changes(session, rng, seed)
        assert session.scalar(select(func.count()).select_from(BillingEventCorrection)) > 0  # corrections replayed
        assert clean(session) == {}

        (model,) = select_models((name,))
        kind, key = break_one(session, model, rng)
        found = clean(session)
        assert list(found) == [name] and len(found[name]) == 1
        assert (found[name][0].kind, found[name][0].key) == (kind, key)

        assert [str(d) for d in repair.rebuild(session, model, "EUR")] == [str(d) for d in found[name]]
        session.commit()
        assert clean(session) == {}


def test_the_commands_check_and_rebuild_and_refuse_an_unknown_name(app, data):
    with data() as session:
        subscription = make_subscription(session, tenant_id=make_tenant(session, name="Checked").id)
        session.add(PaymentTransaction(**payment_values(subscription, refunded_amount=Decimal("10.00"),
                                                        refunded_at=NOW)))
        tenant_id = subscription.tenant_id
    runner = app.test_cli_runner()

    result = runner.invoke(args=["db", "check-read-models"])
    assert result.exit_code == 0, result.output
    assert "invoice_totals: 0 row(s) differ" in result.output and result.output.endswith("every read model is clean\n")

    with data() as session:
        session.execute(text("UPDATE invoice_totals SET amount = amount + 1 WHERE kind = 'refund'"))
    result = runner.invoke(args=["db", "check-read-models"])
    assert result.exit_code == 1
    assert f"invoice_totals: 1 row(s) differ\n  invoice_totals {tenant_id}/refund/EUR: differs: amount " \
           "stored -9.00, recomputed -10.00\n" in result.output
    assert result.output.endswith("1 row(s) differ from their recomputation\n")
    assert runner.invoke(args=["db", "check-read-models", "--only", "login_daily", "--only", "invoice_rows"]) \
        .exit_code == 0

    result = runner.invoke(args=["db", "rebuild-read-models", "--only", "invoice_totals"])
    assert (result.exit_code, result.output) == (0, "invoice_totals: 1 row(s) changed\n")
    assert runner.invoke(args=["db", "check-read-models"]).exit_code == 0

    result = runner.invoke(args=["db", "rebuild-read-models", "--only", "invoice_total"])
    assert result.exit_code == 2
    assert "'invoice_total' is not one of " + ", ".join(f"'{name}'" for name in NAMES) in result.output


def test_a_rebuild_holds_the_writers_off_until_it_commits(db_session, database_url):
    (model,) = select_models(("revenue_daily",))
    repair.rebuild(db_session, model, "EUR")  # the test's transaction stays open, and with it the lock
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as other:
        other.execute("SET lock_timeout = '100ms'")
        assert other.execute("SELECT count(*) FROM revenue_daily").fetchone() is not None  # readers go on
        with pytest.raises(psycopg.errors.LockNotAvailable):
            other.execute("INSERT INTO revenue_daily (day, currency, amount) VALUES ('2099-01-01', 'EUR', 1)")


# --- the SQL the modules keep is the SQL in the database ----------------------------------------------


def _normal(definition: str | None) -> str | None:
    return None if definition is None else " ".join(definition.split())


def _definitions(session, model) -> dict[str, str | None]:
    functions = {signature: _normal(session.scalar(text("SELECT pg_get_functiondef(to_regprocedure(:s))"),
                                                   {"s": signature})) for signature in model.functions}
    triggers = {f"{table}.{name}": _normal(session.scalar(text(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid = to_regclass(:t) AND tgname = :n"),
        {"t": table, "n": name})) for table, name in model.triggers}
    return functions | triggers


def _catalog(session) -> tuple[set[str], set[tuple[str, str, str]]]:
    """The public schema's own functions (not an extension's), and every trigger with its function."""
    functions = set(session.scalars(text(
        "SELECT p.oid::regprocedure::text FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace"
        " WHERE n.nspname = 'public'"
        " AND NOT EXISTS (SELECT 1 FROM pg_depend AS d WHERE d.objid = p.oid AND d.deptype = 'e')")))
    triggers = set(map(tuple, session.execute(text(
        "SELECT c.relname, t.tgname, t.tgfoid::regprocedure::text FROM pg_trigger AS t"
        " JOIN pg_class AS c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal"))))
    return functions, triggers


@pytest.mark.parametrize("name", NAMES)
def test_the_modules_sql_is_what_the_migrations_left(owner_connection, name):
    """Run the module's SQL over the migrated database (rolled back): it must change no definition, modulo
    whitespace, and create nothing the module does not list. DDL, so as the owner, as a migration runs it."""
    (model,) = select_models((name,))
    migrated, catalog = _definitions(owner_connection, model), _catalog(owner_connection)
    assert all(migrated.values()), {what for what, definition in migrated.items() if definition is None}
    for statement in model.sql:
        owner_connection.execute(text(statement))
    assert _definitions(owner_connection, model) == migrated
    assert _catalog(owner_connection) == catalog


def test_every_trigger_and_function_belongs_to_a_read_model_or_guards_the_ledger(db_session):
    functions, triggers = _catalog(db_session)
    assert functions - GUARDS - RULES == {signature for model in REGISTRY for signature in model.functions}
    assert {(table, name) for table, name, function in triggers if function not in GUARDS} == {
        trigger for model in REGISTRY for trigger in model.triggers}


def test_net_revenue_is_written_once():
    """The rule is the SQL function: no module of Backoffice but its own spells the credit's day again."""
    root = Path(__file__).resolve().parents[2]
    fallback = re.compile(r"coalesce\([\w.\s]*credit_noted_at", re.IGNORECASE)
    spelled = [path.relative_to(root).as_posix() for path in sorted((root / "backoffice").rglob("*.py"))
               if fallback.search(path.read_text())]
    assert spelled == ["backoffice/read_models/net_revenue.py"]


def test_folding_the_month_totals_loses_nothing_a_concurrent_writer_appends(database_url):
    """account_month_totals is appended to and folded concurrently (read_models/account_month_totals.py): a fold
    leaves a row it cannot see yet as it is, and two folds at once fold each row once."""
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    key = {"month": date(2099, 1, 1), "currency": "XTS"}  # ISO 4217's code for testing: no write reaches it
    columns = "month, currency, mrr, paying_mrr, paying, new, expansion, contraction, churn, reactivation, other," \
              " churned, new_logos, retained_change, retained_loss"

    def append(connection, mrr: int) -> None:
        connection.execute(f"INSERT INTO account_month_totals ({columns}) VALUES"
                           " (%(month)s, %(currency)s, %(mrr)s, 0, 1, %(mrr)s, 0, 0, 0, 0, 0, 0, 1, 0, 0)",
                           {**key, "mrr": mrr})

    def held(connection) -> tuple[int, Decimal, int]:
        return connection.execute("SELECT count(*), sum(mrr), sum(paying) FROM account_month_totals"
                                  " WHERE month = %(month)s AND currency = %(currency)s", key).fetchone()

    with psycopg.connect(url) as writer, psycopg.connect(url) as folder, psycopg.connect(url) as other:
        try:
            append(writer, 5)  # not committed while the others fold
            append(folder, 1)
            append(folder, 2)
            folder.commit()
            folder.execute("SELECT account_month_totals_compact()")
            folder.commit()
            writer.commit()
            assert held(other) == (2, Decimal("8.00"), 3)
            other.commit()

            folder.execute("SELECT account_month_totals_compact()")  # holds the rows it took until it commits
            folding = threading.Thread(target=lambda: (other.execute("SELECT account_month_totals_compact()"),
                                                       other.commit()))
            folding.start()
            folding.join(0.3)
            assert folding.is_alive()  # the second fold waits on the first's rows
            folder.commit()
            folding.join(10)
            assert held(writer) == (1, Decimal("8.00"), 3)
        finally:
            for connection in (writer, folder, other):
                connection.rollback()
            writer.execute("DELETE FROM account_month_totals WHERE currency = %(currency)s", key)
            writer.commit()

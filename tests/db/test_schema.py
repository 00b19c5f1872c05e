"""The migrated schema: no drift from the models, exact DDL, CHECK constraints, a clean downgrade."""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from psycopg import sql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import backoffice.models  # noqa: F401  (every table in db.metadata, as migrations/env.py sees it)
from backoffice.billing.models import (
    BILLING_EVENT_TYPES,
    BillingEvent,
    MrrDaily,
    PaymentTransaction,
    PlanPrice,
    Subscription,
    effective_billing_events,
)
from backoffice.extensions import db
from tests import pg
from tests.factories import billing_event_values, make_subscription, make_tenant, new_id, payment_values

MIGRATION = Path(__file__).resolve().parents[2] / "migrations" / "versions" / "0001_initial_schema.py"
MODEL_SCHEMA = "model_copy"
CHECK_VIOLATION = "23514"


def assert_check_violation(session: Session, statement: sa.Executable, constraint: str) -> None:
    """Assert that PostgreSQL rejects the statement with the named CHECK, keeping the test's transaction."""
    with pytest.raises(IntegrityError) as error, session.begin_nested():
        session.execute(statement)
    assert error.value.orig is not None
    assert error.value.orig.sqlstate == CHECK_VIOLATION
    assert constraint in str(error.value.orig)


# --- the schema matches the models -------------------------------------------------------------


def test_autogenerate_finds_no_drift(db_session: Session) -> None:
    """What `flask db check` runs, with server defaults compared too; nothing is ignored."""
    context = MigrationContext.configure(
        db_session.connection(), opts={"compare_type": True, "compare_server_default": True}
    )
    assert compare_metadata(context, db.metadata) == []


def _catalog(connection: sa.Connection, schema: str, table: str) -> dict[str, Any]:
    """Describe a table as PostgreSQL itself prints it, with schema names removed."""
    regclass = {"table": f"{schema}.{table}"}
    columns = connection.execute(
        sa.text(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,"
            " pg_get_expr(d.adbin, d.adrelid)"
            " FROM pg_attribute AS a"
            " LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
            " WHERE a.attrelid = CAST(:table AS regclass) AND a.attnum > 0 AND NOT a.attisdropped"
        ),
        regclass,
    ).all()
    indexes = connection.execute(
        sa.text(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index AS i"
            " JOIN pg_class AS c ON c.oid = i.indexrelid WHERE i.indrelid = CAST(:table AS regclass)"
        ),
        regclass,
    ).all()
    constraints = connection.execute(
        sa.text(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = CAST(:table AS regclass)"
        ),
        regclass,
    ).all()

    def plain(text: str) -> str:
        return text.replace(f"{schema}.", "")

    return {
        "columns": {
            name: (kind, not_null, identity, default) for name, kind, not_null, identity, default in columns
        },
        "indexes": {name: plain(definition) for name, definition in indexes},
        "constraints": {name: plain(definition) for name, definition in constraints},
    }


def test_migration_creates_exactly_what_the_models_declare(owner_connection: sa.Connection) -> None:
    """Compare PostgreSQL's own DDL of the migrated tables with the models' tables created beside them.

    Autogenerate does not compare CHECK constraints, partial-index predicates, index methods or
    operator classes; PostgreSQL's canonical definitions cover those. The copy is DDL: the owner's to write.
    """
    connection = owner_connection
    connection.execute(sa.text(f"CREATE SCHEMA {MODEL_SCHEMA}"))
    model_copy = sa.MetaData()
    for table in db.metadata.sorted_tables:
        table.to_metadata(model_copy, schema=MODEL_SCHEMA)
    model_copy.create_all(connection)

    migrated_tables = set(sa.inspect(connection).get_table_names(schema="public")) - {"alembic_version"}
    assert migrated_tables == set(db.metadata.tables)
    for name in sorted(db.metadata.tables):
        assert _catalog(connection, "public", name) == _catalog(connection, MODEL_SCHEMA, name), name


def test_view_columns_match_its_table_object(db_session: Session) -> None:
    columns = sa.inspect(db_session.connection()).get_columns("effective_billing_events")
    assert [column["name"] for column in columns] == [
        column.name for column in effective_billing_events.columns
    ]


# --- CHECK constraints ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "column",
    [
        "amount",
        "amount_excluding_tax",
        "tax_amount",
        "invoice_total",
        "amount_from_credit",
        "refunded_amount",
        "credited_amount",
    ],
)
def test_payment_amounts_cannot_be_negative(db_session: Session, column: str) -> None:
    subscription = make_subscription(db_session)
    statement = sa.insert(PaymentTransaction).values(
        payment_values(subscription, **{column: Decimal("-0.01")})
    )
    assert_check_violation(db_session, statement, "ck_payment_transactions_amounts_non_negative")


def test_a_valid_payment_is_stored(db_session: Session) -> None:
    subscription = make_subscription(db_session)
    db_session.execute(sa.insert(PaymentTransaction).values(payment_values(subscription)))
    assert db_session.scalar(sa.select(sa.func.count()).select_from(PaymentTransaction)) == 1


def test_committed_mrr_cannot_be_negative(db_session: Session) -> None:
    subscription = make_subscription(db_session)
    values = billing_event_values(
        subscription,
        event_type="NoOp",
        previous_amount=None,
        new_amount=None,
        amount_delta=None,
        committed_mrr=Decimal("-1.00"),
        movement=None,
    )
    assert_check_violation(
        db_session, sa.insert(BillingEvent).values(values), "ck_billing_events_committed_mrr_non_negative"
    )


def _lower_case_currency_inserts(session: Session) -> dict[str, sa.Insert]:
    subscription = make_subscription(session)
    return {
        "ck_billing_events_currency": sa.insert(BillingEvent).values(
            billing_event_values(subscription, currency="eur")
        ),
        "ck_payment_transactions_currency": sa.insert(PaymentTransaction).values(
            payment_values(subscription, currency="eur")
        ),
        "ck_plan_prices_currency": sa.insert(PlanPrice).values(
            id="price_x", product_id="prod_x", currency="eur"
        ),
        "ck_mrr_daily_currency": sa.insert(MrrDaily).values(
            day=date(2026, 3, 1), currency="eur", movement="new"
        ),
        "ck_subscriptions_current_price_currency": sa.insert(Subscription).values(
            id=new_id("subscr"), tenant_id=make_tenant(session).id, current_price_currency="Eur"
        ),
    }


@pytest.mark.parametrize(
    "constraint",
    [
        "ck_billing_events_currency",
        "ck_payment_transactions_currency",
        "ck_plan_prices_currency",
        "ck_mrr_daily_currency",
        "ck_subscriptions_current_price_currency",
    ],
)
def test_currency_must_be_an_upper_case_code(db_session: Session, constraint: str) -> None:
    statement = _lower_case_currency_inserts(db_session)[constraint]
    assert_check_violation(db_session, statement, constraint)


@pytest.mark.parametrize(
    ("amounts", "constraint"),
    [
        ((Decimal("10.00"), Decimal("25.00"), Decimal("14.00")), "ck_billing_events_amount_delta"),
        ((Decimal("25.00"), Decimal("10.00"), Decimal("15.00")), "ck_billing_events_amount_delta"),
        ((Decimal("10.00"), Decimal("25.00"), None), "ck_billing_events_amounts_all_or_none"),
        ((None, Decimal("25.00"), Decimal("25.00")), "ck_billing_events_amounts_all_or_none"),
    ],
)
def test_amount_delta_must_be_new_minus_previous(
    db_session: Session, amounts: tuple[Decimal | None, ...], constraint: str
) -> None:
    previous, new, delta = amounts
    subscription = make_subscription(db_session)
    values = billing_event_values(
        subscription, previous_amount=previous, new_amount=new, amount_delta=delta, committed_mrr=new or 0
    )
    assert_check_violation(db_session, sa.insert(BillingEvent).values(values), constraint)


@pytest.mark.parametrize(
    "amounts",
    [
        (Decimal("10.00"), Decimal("25.00"), Decimal("15.00")),
        (Decimal("25.00"), Decimal("10.00"), Decimal("-15.00")),
        (Decimal("49.00"), Decimal("49.00"), Decimal("0.00")),
        (None, None, None),
    ],
)
def test_consistent_amounts_are_stored(db_session: Session, amounts: tuple[Decimal | None, ...]) -> None:
    previous, new, delta = amounts
    subscription = make_subscription(db_session)
    values = billing_event_values(
        subscription, previous_amount=previous, new_amount=new, amount_delta=delta, committed_mrr=new or 0
    )
    db_session.execute(sa.insert(BillingEvent).values(values))
    assert db_session.get(BillingEvent, values["id"]) is not None


@pytest.mark.parametrize("event_type", BILLING_EVENT_TYPES)
def test_every_known_event_type_is_accepted(db_session: Session, event_type: str) -> None:
    subscription = make_subscription(db_session)
    db_session.execute(
        sa.insert(BillingEvent).values(billing_event_values(subscription, event_type=event_type))
    )


def test_an_unknown_event_type_is_rejected(db_session: Session) -> None:
    subscription = make_subscription(db_session)
    statement = sa.insert(BillingEvent).values(
        billing_event_values(subscription, event_type="subscription_created")
    )
    assert_check_violation(db_session, statement, "ck_billing_events_event_type")


# --- the migration goes down and up again -------------------------------------------------------


def _load_migrations() -> list[ModuleType]:
    """Every migration, oldest first."""
    modules = []
    for path in sorted(MIGRATION.parent.glob("[0-9]*.py")):
        spec = importlib.util.spec_from_file_location(f"migration_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        modules.append(module)
    return modules


def _run(engine: sa.Engine, steps) -> None:
    for step in steps:
        with engine.begin() as connection:
            context = MigrationContext.configure(connection, opts={"target_metadata": db.metadata})
            with Operations.context(context):
                step()


@pytest.fixture
def empty_database(pg_server: str) -> Iterator[str]:
    """Yield the SQLAlchemy URL of a new, empty database, dropped afterwards."""
    name = f"backoffice_roundtrip_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    try:
        yield pg.sqlalchemy_url(pg.with_database(pg_server, name))
    finally:
        pg.drop_database(pg_server, name)


def test_downgrade_removes_everything_and_upgrade_restores_it(empty_database: str) -> None:
    migrations = _load_migrations()
    engine = sa.create_engine(empty_database)
    try:
        _run(engine, [m.upgrade for m in migrations] + [m.downgrade for m in reversed(migrations)])
        with engine.connect() as connection:
            leftovers = (
                connection.execute(
                    sa.text(
                        "SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
                        " WHERE n.nspname = 'public'"
                        " UNION ALL SELECT p.proname FROM pg_proc AS p"
                        " JOIN pg_namespace AS n ON n.oid = p.pronamespace"
                        " WHERE n.nspname = 'public'"
                        " UNION ALL SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'"
                    )
                )
                .scalars()
                .all()
            )
        assert leftovers == []

        _run(engine, [m.upgrade for m in migrations])
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "compare_server_default": True}
            )
            assert compare_metadata(context, db.metadata) == []
    finally:
        engine.dispose()


def test_archived_payloads_are_compressed_with_lz4_where_the_server_has_it(owner_connection: sa.Connection) -> None:
    """Migration 0023: a payload large enough to be compressed is stored with LZ4 on a server built with it (the
    loopback one), and with pglz where the server has no LZ4 (the embedded one), the migration running on both."""
    connection = owner_connection
    try:
        with connection.begin_nested():
            connection.execute(sa.text("CREATE TEMP TABLE lz4_probe (j jsonb COMPRESSION lz4)"))
        expected = "lz4"
    except sa.exc.NotSupportedError:
        expected = "pglz"
    for table in ("stripe_events", "stripe_event_divergences"):
        method = connection.execute(sa.text(
            "SELECT attcompression FROM pg_attribute WHERE attrelid = CAST(:table AS regclass) AND attname = 'payload'"),
            {"table": table}).scalar_one()
        assert {"l": "lz4", "p": "pglz", "": "pglz"}[method] == expected, table
    session = Session(bind=connection)
    payload = {"id": f"evt_{uuid.uuid4().hex}", "padding": [f"line {n} of a long invoice" for n in range(400)]}
    session.execute(sa.text(
        "INSERT INTO stripe_events (id, stripe_created_at, type, payload, payload_hash)"
        " VALUES (:id, now(), 'invoice.paid', CAST(:payload AS jsonb), repeat('a', 64))"),
        {"id": payload["id"], "payload": json.dumps(payload)})
    stored = session.execute(sa.text("SELECT pg_column_compression(payload) FROM stripe_events WHERE id = :id"),
                             {"id": payload["id"]}).scalar_one()
    assert stored == expected

"""DESIGN §4.7 enforced by PostgreSQL: the ledger and its companions only grow; the archive never changes and its
events' states only move forward."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from backoffice.billing.models import (
    STRIPE_EVENT_STATUSES,
    BillingEvent,
    BillingEventCorrection,
    StripeEvent,
    StripeEventDivergence,
    StripeEventState,
    effective_billing_events,
)
from backoffice.database_roles import RUNTIME_GROUP
from backoffice.operators.models import Operator, OperatorAction
from tests import pg
from tests.factories import (
    CORRECTED_AT,
    OCCURRED_AT,
    archive_event,
    make_billing_event,
    make_correction,
    make_tenant,
    new_id,
)

RESTRICT_VIOLATION = "23001"
# The factories' defaults: when a ledger row happened and when its correction was written.
T0 = OCCURRED_AT
T1 = CORRECTED_AT

ALLOWED_MOVES = {
    ("pending", "processed"),
    ("pending", "ignored"),
    ("pending", "failed"),
    ("ignored", "processed"),
    ("ignored", "failed"),
    ("failed", "processed"),
    ("failed", "failed"),
}


def _sha256(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def make_stripe_event(session: Session, **overrides: Any) -> StripeEvent:
    payload = {"id": new_id("evt"), "type": "customer.subscription.updated", "data": {"object": {}}}
    return archive_event(session, **{
        "id": payload["id"],
        "stripe_created_at": T0,
        "type": payload["type"],
        "api_version": "2025-03-31.basil",
        "stripe_customer_id": new_id("cus"),
        "payload": payload,
        "payload_hash": _sha256(payload),
        **overrides,
    })


def make_divergence(session: Session) -> StripeEventDivergence:
    event = make_stripe_event(session)
    payload = {**event.payload, "livemode": True}
    divergence = StripeEventDivergence(
        stripe_event_id=event.id, payload=payload, payload_hash=_sha256(payload)
    )
    session.add(divergence)
    session.flush()
    return divergence


def make_operator_action(session: Session) -> OperatorAction:
    operator = Operator(id=new_id("oid"), name="Ada Admin", email="admin@example.com", is_admin=True)
    session.add(operator)
    session.flush()
    action = OperatorAction(operator_id=operator.id, action="sync", reason="customer reported a wrong plan")
    session.add(action)
    session.flush()
    return action


def assert_refused(session: Session, statement: sa.Executable | str, message: str = "") -> None:
    """Assert that a trigger refuses the statement; a savepoint keeps the test's transaction usable."""
    with pytest.raises(IntegrityError) as error, session.begin_nested():
        session.execute(sa.text(statement) if isinstance(statement, str) else statement)
    assert error.value.orig is not None
    assert error.value.orig.sqlstate == RESTRICT_VIOLATION
    assert message in str(error.value.orig)


def _stripe_event_row(session: Session, event_id: str) -> sa.Row[Any]:
    return session.execute(sa.select(StripeEvent.__table__).where(StripeEvent.id == event_id)).one()


def _state_row(session: Session, event_id: str) -> sa.Row[Any]:
    return session.execute(sa.select(StripeEventState.__table__)
                           .where(StripeEventState.stripe_event_id == event_id)).one()


def _move(event_id: str, **values: Any) -> sa.Update:
    return sa.update(StripeEventState).where(StripeEventState.stripe_event_id == event_id).values(**values)


# --- ledger, corrections, divergences, audit log: no UPDATE, DELETE or TRUNCATE -----------------

def make_any_correction(session: Session) -> BillingEventCorrection:
    return make_correction(session, make_billing_event(session))


APPEND_ONLY: dict[str, tuple[Any, Callable[[Session], Any], dict[str, Any]]] = {
    "billing_events": (BillingEvent, make_billing_event, {"position": 2}),
    "billing_event_corrections": (BillingEventCorrection, make_any_correction, {"reason": "edited"}),
    "stripe_event_divergences": (StripeEventDivergence, make_divergence, {"received_at": T1}),
    "operator_actions": (OperatorAction, make_operator_action, {"reason": "edited"}),
}


@pytest.mark.parametrize("table", sorted(APPEND_ONLY))
def test_update_is_refused(db_session: Session, table: str) -> None:
    model, make_row, change = APPEND_ONLY[table]
    row = make_row(db_session)
    statement = sa.update(model).where(model.id == row.id).values(**change)
    assert_refused(db_session, statement, f"UPDATE on {table} is refused")


@pytest.mark.parametrize("table", sorted(APPEND_ONLY))
def test_delete_is_refused(db_session: Session, table: str) -> None:
    model, make_row, _ = APPEND_ONLY[table]
    row = make_row(db_session)
    assert_refused(db_session, sa.delete(model).where(model.id == row.id), f"DELETE on {table} is refused")


@pytest.mark.parametrize("table", [*sorted(APPEND_ONLY), "stripe_events", "stripe_event_states"])
def test_truncate_is_refused_even_to_the_owner(owner_connection: sa.Connection, table: str) -> None:
    # The app's role may not truncate at all (below); the trigger is the wall left for the owner.
    # CASCADE gets past the foreign keys of dependent tables; the named table's trigger fires first.
    with pytest.raises(IntegrityError) as error, owner_connection.begin_nested():
        owner_connection.execute(sa.text(f"TRUNCATE {table} CASCADE"))
    assert error.value.orig is not None and error.value.orig.sqlstate == RESTRICT_VIOLATION
    assert f"TRUNCATE on {table} is refused" in str(error.value.orig)


def test_ledger_rows_survive_a_refused_update(db_session: Session) -> None:
    event = make_billing_event(db_session)
    assert_refused(
        db_session, sa.update(BillingEvent).where(BillingEvent.id == event.id).values(committed_mrr=1)
    )
    stored = db_session.execute(
        sa.select(BillingEvent.committed_mrr).where(BillingEvent.id == event.id)
    ).scalar_one()
    assert stored == Decimal("0.00")


# --- the archive's states: allowed status moves only ---------------------------------------------


def test_every_archived_event_opens_pending_whatever_inserts_it(db_session: Session) -> None:
    """The state is opened by the archive's own trigger: the ORM, a many-row INSERT, an INSERT that conflicts."""
    single = make_stripe_event(db_session)
    payloads = [{"id": new_id("evt"), "type": "invoice.paid", "data": {"object": {}}} for _ in range(3)]
    rows = [{"id": p["id"], "stripe_created_at": T0, "type": p["type"], "payload": p, "payload_hash": _sha256(p)}
            for p in payloads]
    db_session.execute(sa.insert(StripeEvent), rows[:2])
    # Stored already (one of them), so the conflict inserts, and opens, only the other.
    late = {**rows[2], "id": "evt_late"}
    db_session.execute(postgresql.insert(StripeEvent).values([rows[0], late]).on_conflict_do_nothing())
    db_session.execute(postgresql.insert(StripeEvent).values([rows[2]]).on_conflict_do_nothing())
    ids = [single.id, *(p["id"] for p in payloads), "evt_late"]
    states = dict(db_session.execute(sa.select(StripeEventState.stripe_event_id, StripeEventState.status)
                                     .where(StripeEventState.stripe_event_id.in_(ids))).all())
    assert states == dict.fromkeys(ids, "pending")


@pytest.mark.parametrize("new", STRIPE_EVENT_STATUSES)
@pytest.mark.parametrize("old", STRIPE_EVENT_STATUSES)
def test_status_moves(db_session: Session, old: str, new: str) -> None:
    event = make_stripe_event(
        db_session,
        status=old,
        processed_at=None if old == "pending" else T0,
        error="card_declined" if old == "failed" else None,
    )
    statement = _move(event.id, status=new, processed_at=T1, error="timeout" if new == "failed" else None)
    if (old, new) in ALLOWED_MOVES:
        db_session.execute(statement)
        row = _state_row(db_session, event.id)
        assert (row.status, row.processed_at) == (new, T1)
    else:
        assert_refused(db_session, statement, f"status cannot move from {old} to {new}")
        assert _state_row(db_session, event.id).status == old


def test_processed_at_and_error_do_not_change_without_a_move(db_session: Session) -> None:
    event = make_stripe_event(db_session, status="processed", processed_at=T0)
    statement = _move(event.id, error="noted afterwards")
    assert_refused(db_session, statement, "status cannot move from processed to processed")


def test_an_update_that_changes_nothing_is_allowed(db_session: Session) -> None:
    event = make_stripe_event(db_session, status="processed", processed_at=T0)
    db_session.execute(_move(event.id, status="processed"))


@pytest.mark.parametrize("column", ["tenant_id", "stripe_subscription_id"])
def test_link_columns_are_set_once_from_null(db_session: Session, column: str) -> None:
    if column == "tenant_id":
        first, second = make_tenant(db_session).id, make_tenant(db_session).id
    else:
        first, second = "sub_first", "sub_second"
    event = make_stripe_event(db_session)
    # The tenant is the state's (linked as the replay settles the event), the subscription the archive row's.
    model, key, read = ((StripeEventState, StripeEventState.stripe_event_id, _state_row) if column == "tenant_id"
                        else (StripeEvent, StripeEvent.id, _stripe_event_row))

    def update(value: str | None) -> sa.Update:
        return sa.update(model).where(key == event.id).values({column: value})

    db_session.execute(update(first))
    assert getattr(read(db_session, event.id), column) == first
    # Writing the same value again is not a change.
    db_session.execute(update(first))

    assert_refused(db_session, update(second), f"{column} is already")
    assert_refused(db_session, update(None), f"{column} is already")


def test_linking_a_tenant_is_allowed_together_with_a_move(db_session: Session) -> None:
    tenant = make_tenant(db_session)
    event = make_stripe_event(db_session, status="ignored", processed_at=T0)
    db_session.execute(_move(event.id, tenant_id=tenant.id, status="processed", processed_at=T1))
    row = _state_row(db_session, event.id)
    assert (row.tenant_id, row.status) == (tenant.id, "processed")


def test_a_state_stays_with_its_event(db_session: Session) -> None:
    event, other = make_stripe_event(db_session), make_stripe_event(db_session)
    assert_refused(db_session, _move(event.id, stripe_event_id=other.id), "stripe_event_id cannot change")
    assert_refused(db_session, sa.delete(StripeEventState).where(StripeEventState.stripe_event_id == event.id),
                   "DELETE on stripe_event_states is refused")


IMMUTABLE_CHANGES: dict[str, dict[str, Any]] = {
    "id": {"id": "evt_renamed"},
    "sequence": {"sequence": 999_999},
    "received_at": {"received_at": T1},
    "stripe_created_at": {"stripe_created_at": T1},
    "type": {"type": "customer.subscription.deleted"},
    "api_version": {"api_version": "2026-10-28.endive"},
    "stripe_customer_id": {"stripe_customer_id": "cus_other"},
    "payload": {"payload": {"id": "evt_x", "type": "customer.subscription.updated", "livemode": True}},
    "payload_hash": {"payload_hash": "0" * 64},
    "recovered_at, recovery_source": {"recovered_at": T1, "recovery_source": "events_list"},
}


@pytest.mark.parametrize("columns", sorted(IMMUTABLE_CHANGES))
def test_archived_columns_never_change(db_session: Session, columns: str) -> None:
    event = make_stripe_event(db_session)
    statement = sa.update(StripeEvent).where(StripeEvent.id == event.id).values(**IMMUTABLE_CHANGES[columns])
    assert_refused(db_session, statement, f"{columns} cannot change")


def test_archived_columns_never_change_after_a_move(db_session: Session) -> None:
    event = make_stripe_event(db_session, status="processed", processed_at=T1)
    statement = sa.update(StripeEvent).where(StripeEvent.id == event.id).values(payload={"rewritten": True})
    assert_refused(db_session, statement, "payload cannot change")


def test_archive_rows_are_never_deleted(db_session: Session) -> None:
    event = make_stripe_event(db_session)
    assert_refused(
        db_session,
        sa.delete(StripeEvent).where(StripeEvent.id == event.id),
        "DELETE on stripe_events is refused",
    )


# --- effective_billing_events: the latest correction wins ---------------------------------------


def _effective(session: Session, billing_event_id: str) -> sa.Row[Any]:
    return session.execute(
        sa.select(effective_billing_events).where(effective_billing_events.c.id == billing_event_id)
    ).one()


def test_an_uncorrected_row_is_shown_as_written(db_session: Session) -> None:
    event = make_billing_event(db_session)
    row = _effective(db_session, event.id)
    assert (row.event_type, row.amount_delta, row.committed_mrr, row.movement) == (
        "SubscriptionImmediatelyCancelled",
        Decimal("-49.00"),
        Decimal("0.00"),
        "churn",
    )
    assert (row.corrected, row.corrected_at, row.correction_id) == (False, None, None)


def test_the_latest_correction_is_applied(db_session: Session) -> None:
    event = make_billing_event(db_session)
    latest = make_correction(db_session, event, at=T1 + timedelta(hours=1))
    make_correction(db_session, event, event_type="SubscriptionCancelled", at=T1)

    row = _effective(db_session, event.id)
    assert row.event_type == "SubscriptionExpired"
    assert (row.previous_amount, row.new_amount, row.amount_delta, row.movement) == (
        Decimal("0.00"),
        Decimal("0.00"),
        Decimal("0.00"),
        "other",
    )
    assert (row.corrected, row.corrected_at, row.correction_id) == (True, latest.at, latest.id)
    # What was believed when stays in the ledger.
    written = db_session.execute(
        sa.select(BillingEvent.event_type).where(BillingEvent.id == event.id)
    ).scalar_one()
    assert written == "SubscriptionImmediatelyCancelled"


def test_corrections_at_the_same_instant_are_ordered_by_id(db_session: Session) -> None:
    event = make_billing_event(db_session)
    make_correction(db_session, event, event_type="SubscriptionCancelled")
    second = make_correction(db_session, event, event_type="SubscriptionExpired")
    row = _effective(db_session, event.id)
    assert (row.event_type, row.correction_id) == ("SubscriptionExpired", second.id)


def test_a_correction_can_clear_the_amounts(db_session: Session) -> None:
    event = make_billing_event(
        db_session,
        event_type="SubscriptionUpgraded",
        from_plan="standard",
        to_plan="premium",
        previous_amount=Decimal("49.00"),
        new_amount=Decimal("99.00"),
        amount_delta=Decimal("50.00"),
        committed_mrr=Decimal("99.00"),
        movement="expansion",
    )
    make_correction(
        db_session,
        event,
        event_type="NoOp",
        from_plan=None,
        to_plan="premium",
        previous_amount=None,
        new_amount=None,
        amount_delta=None,
        committed_mrr=Decimal("99.00"),
        movement=None,
    )
    row = _effective(db_session, event.id)
    assert (row.event_type, row.previous_amount, row.new_amount, row.amount_delta, row.movement) == (
        "NoOp",
        None,
        None,
        None,
        None,
    )
    assert row.committed_mrr == Decimal("99.00")
    assert row.corrected is True


def test_every_archive_column_is_guarded_or_allowed(db_session: Session) -> None:
    """The guard names columns one by one: a column added later must be named there, or allowed on purpose."""
    definition = db_session.scalar(sa.text("SELECT pg_get_functiondef('guard_stripe_event_update'::regproc)"))
    columns = set(db_session.scalars(sa.text(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'stripe_events'")))
    allowed = {"stripe_subscription_id"}  # set once, from null
    separate = {"payload"}  # its own trigger, fired only when an UPDATE sets it
    unguarded = {c for c in columns - allowed - separate if f"NEW.{c} IS DISTINCT FROM OLD.{c}" not in definition}
    assert unguarded == set()
    # The trigger calls the guard only WHEN it would refuse (migration 0023): its condition names them all too.
    when = db_session.scalar(sa.text(
        "SELECT pg_get_triggerdef(oid) FROM pg_trigger WHERE tgname = 'stripe_events_guard_update'")).lower()
    assert {c for c in columns - separate if f"old.{c}" not in when or f"new.{c}" not in when} == set()


# --- the app's role cannot step around the triggers (migration 0016) -----------------------------

INSUFFICIENT_PRIVILEGE = "42501"
GUARDED = ("billing_events", "stripe_events", "stripe_event_states", "billing_event_corrections",
           "stripe_event_divergences", "operator_actions")


def assert_not_allowed(session: Session, statement: str) -> None:
    """Assert that PostgreSQL refuses the statement to the app's role for want of a privilege."""
    with pytest.raises(DBAPIError) as error, session.begin_nested():
        session.execute(sa.text(statement))
    assert getattr(error.value.orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE, error.value.orig


def _triggers(session: Session, table: str) -> list[str]:
    return list(session.scalars(sa.text(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:table AS regclass) AND NOT tgisinternal ORDER BY 1"),
        {"table": table}))


def test_the_app_connects_as_the_runtime_role(db_session: Session) -> None:
    """The suite's app is held to production's role: a login in the group that owns nothing and holds no power."""
    role = db_session.scalar(sa.text("SELECT current_user"))
    assert role == pg.RUNTIME_ROLE
    assert db_session.scalar(sa.text("SELECT pg_has_role(current_user, :group, 'MEMBER')"),
                             {"group": RUNTIME_GROUP})
    powers = db_session.execute(sa.text(
        "SELECT rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls FROM pg_roles"
        " WHERE rolname = current_user")).one()
    assert not any(powers)
    owned = db_session.scalar(sa.text(
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND pg_has_role(current_user, c.relowner, 'MEMBER')"))
    assert owned == 0


def test_the_runtime_role_cannot_turn_replication_mode_on(db_session: Session) -> None:
    """`replica` would skip every ordinary trigger, the append-only guards with them."""
    assert_not_allowed(db_session, "SET session_replication_role = replica")
    assert_not_allowed(db_session, "SET LOCAL session_replication_role = replica")


@pytest.mark.parametrize("table", GUARDED)
def test_the_runtime_role_cannot_disable_or_drop_a_trigger(db_session: Session, table: str) -> None:
    names = _triggers(db_session, table)
    assert names, f"{table} has no trigger to guard it"
    assert_not_allowed(db_session, f"ALTER TABLE {table} DISABLE TRIGGER ALL")
    assert_not_allowed(db_session, f"ALTER TABLE {table} DISABLE TRIGGER USER")
    for name in names:
        assert_not_allowed(db_session, f'ALTER TABLE {table} DISABLE TRIGGER "{name}"')
        assert_not_allowed(db_session, f'DROP TRIGGER "{name}" ON {table}')
    assert_not_allowed(db_session, f"ALTER TABLE {table} OWNER TO CURRENT_USER")
    assert_not_allowed(db_session, f"DROP TABLE {table} CASCADE")
    assert _triggers(db_session, table) == names


@pytest.mark.parametrize("table", GUARDED)
def test_the_runtime_role_cannot_truncate(db_session: Session, table: str) -> None:
    assert_not_allowed(db_session, f"TRUNCATE {table} CASCADE")


def test_only_the_archive_opens_a_state(db_session: Session) -> None:
    """No state without its archived event: the app's role may not insert one; the archive's trigger does."""
    assert_not_allowed(db_session, "INSERT INTO stripe_event_states (stripe_event_id) VALUES ('evt_forged')")
    event = make_stripe_event(db_session)
    assert _state_row(db_session, event.id).status == "pending"


def test_the_runtime_role_cannot_replace_a_guard_function(db_session: Session) -> None:
    """A trigger calls its function by name: rewriting the function would empty the guard without touching it."""
    assert_not_allowed(db_session, "CREATE OR REPLACE FUNCTION guard_stripe_event_update() RETURNS trigger"
                                   " LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$")


def test_the_runtime_role_cannot_become_the_owner(db_session: Session) -> None:
    owner = db_session.scalar(sa.text(
        "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = CAST('billing_events' AS regclass)"))
    assert_not_allowed(db_session, f'SET ROLE "{owner}"')


@pytest.mark.parametrize("statement", [
    "UPDATE billing_events SET position = position + 1",
    "DELETE FROM billing_events",
    "UPDATE billing_event_corrections SET reason = 'edited'",
    "DELETE FROM billing_event_corrections",
    "DELETE FROM stripe_events",
    "UPDATE stripe_events SET payload = '{}'::jsonb",
    "DELETE FROM stripe_event_states",
    "UPDATE stripe_event_states SET status = 'pending', processed_at = now()",
])
def test_the_triggers_refuse_the_runtime_role(db_session: Session, statement: str) -> None:
    """The privileges the app needs (its own UPDATE of an event's status) leave these to the triggers."""
    make_correction(db_session, make_billing_event(db_session))
    make_stripe_event(db_session)
    assert_refused(db_session, statement)

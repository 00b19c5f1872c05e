"""Find refunds and invoice payments (events that name no customer) by their charge or invoice; a cheaper guard.

Two generated columns, derived from the payload by PostgreSQL, and a partial index on each. The archive's
update guard names its immutable columns instead of comparing whole rows as JSON.

Revision ID: 0003_linked_event_indexes
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_linked_event_indexes"
down_revision = "0002_correction_position"
branch_labels = None
depends_on = None

FIELDS = ("charge", "invoice")

# The guard named every column through to_jsonb(row), which detoasts and compares the payload on every status
# move (most of a replay's time). It now names the immutable columns one by one (a test checks that every
# column is named or allowed), and the payload has a trigger of its own that fires only when an UPDATE sets it.
# Generated columns follow the payload and are left out: a BEFORE trigger sees them unset in NEW.
GUARDED = ("api_version", "id", "payload_hash", "received_at", "recovered_at", "recovery_source", "sequence",
           "stripe_created_at", "stripe_customer_id", "type")
# What both versions of the guard check after the immutable columns: set-once linking and the status moves.
LINKING_AND_MOVES = """
    IF OLD.tenant_id IS NOT NULL AND NEW.tenant_id IS DISTINCT FROM OLD.tenant_id THEN
        RAISE EXCEPTION USING
            MESSAGE = 'stripe_events ' || OLD.id || ': tenant_id is already ' || OLD.tenant_id,
            ERRCODE = 'restrict_violation',
            HINT = 'tenant_id may only be set once, from null.';
    END IF;
    IF OLD.stripe_subscription_id IS NOT NULL
       AND NEW.stripe_subscription_id IS DISTINCT FROM OLD.stripe_subscription_id THEN
        RAISE EXCEPTION USING
            MESSAGE = 'stripe_events ' || OLD.id || ': stripe_subscription_id is already '
                || OLD.stripe_subscription_id,
            ERRCODE = 'restrict_violation',
            HINT = 'stripe_subscription_id may only be set once, from null.';
    END IF;

    allowed_move := CASE OLD.status
        WHEN 'pending' THEN NEW.status IN ('processed', 'ignored', 'failed')
        WHEN 'ignored' THEN NEW.status IN ('processed', 'failed')
        WHEN 'failed' THEN NEW.status IN ('processed', 'failed')
        ELSE false
    END;
    IF (NEW.status, NEW.processed_at, NEW.error)
           IS DISTINCT FROM (OLD.status, OLD.processed_at, OLD.error)
       AND NOT allowed_move THEN
        RAISE EXCEPTION USING
            MESSAGE = 'stripe_events ' || OLD.id || ': status cannot move from ' || OLD.status
                || ' to ' || NEW.status,
            ERRCODE = 'restrict_violation',
            HINT = 'pending -> processed|ignored|failed, ignored -> processed|failed, '
                   'failed -> processed|failed; processed_at and error change only with such a move.';
    END IF;
    RETURN NEW;
END;
$$
"""
GUARD = """
CREATE OR REPLACE FUNCTION guard_stripe_event_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed text;
    allowed_move boolean;
BEGIN
    changed := concat_ws(', ',
        CASE WHEN NEW.api_version IS DISTINCT FROM OLD.api_version THEN 'api_version' END,
        CASE WHEN NEW.id IS DISTINCT FROM OLD.id THEN 'id' END,
        CASE WHEN NEW.payload_hash IS DISTINCT FROM OLD.payload_hash THEN 'payload_hash' END,
        CASE WHEN NEW.received_at IS DISTINCT FROM OLD.received_at THEN 'received_at' END,
        CASE WHEN NEW.recovered_at IS DISTINCT FROM OLD.recovered_at THEN 'recovered_at' END,
        CASE WHEN NEW.recovery_source IS DISTINCT FROM OLD.recovery_source THEN 'recovery_source' END,
        CASE WHEN NEW.sequence IS DISTINCT FROM OLD.sequence THEN 'sequence' END,
        CASE WHEN NEW.stripe_created_at IS DISTINCT FROM OLD.stripe_created_at THEN 'stripe_created_at' END,
        CASE WHEN NEW.stripe_customer_id IS DISTINCT FROM OLD.stripe_customer_id THEN 'stripe_customer_id' END,
        CASE WHEN NEW.type IS DISTINCT FROM OLD.type THEN 'type' END
    );
    IF changed <> '' THEN
        RAISE EXCEPTION USING
            MESSAGE = 'stripe_events ' || OLD.id || ': ' || changed || ' cannot change',
            ERRCODE = 'restrict_violation',
            HINT = 'The archive is append-only (DESIGN 4.7).';
    END IF;
""" + LINKING_AND_MOVES
PAYLOAD_GUARD = """
CREATE FUNCTION guard_stripe_event_payload() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.payload IS DISTINCT FROM OLD.payload THEN
        RAISE EXCEPTION USING
            MESSAGE = 'stripe_events ' || OLD.id || ': payload cannot change',
            ERRCODE = 'restrict_violation',
            HINT = 'The archive is append-only (DESIGN 4.7).';
    END IF;
    RETURN NEW;
END;
$$
"""
GUARD_BEFORE = """
CREATE OR REPLACE FUNCTION guard_stripe_event_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed text;
    allowed_move boolean;
BEGIN
    SELECT string_agg(new_row.key, ', ' ORDER BY new_row.key) INTO changed
    FROM jsonb_each(to_jsonb(NEW)) AS new_row
    JOIN jsonb_each(to_jsonb(OLD)) AS old_row USING (key)
    WHERE new_row.value IS DISTINCT FROM old_row.value
      AND new_row.key NOT IN
          ('status', 'processed_at', 'error', 'tenant_id', 'stripe_subscription_id');
    IF changed IS NOT NULL THEN
        RAISE EXCEPTION USING
            MESSAGE = 'stripe_events ' || OLD.id || ': ' || changed || ' cannot change',
            ERRCODE = 'restrict_violation',
            HINT = 'The archive is append-only (DESIGN 4.7).';
    END IF;

""" + LINKING_AND_MOVES


def upgrade():
    op.execute(GUARD)
    op.execute(PAYLOAD_GUARD)
    # Named to sort before stripe_events_guard_update: PostgreSQL fires same-event triggers by name.
    op.execute("CREATE TRIGGER stripe_events_guard_payload BEFORE UPDATE OF payload ON stripe_events "
               "FOR EACH ROW EXECUTE FUNCTION guard_stripe_event_payload()")
    for field in FIELDS:
        op.add_column("stripe_events", sa.Column(
            f"object_{field}", sa.Text(),
            sa.Computed(f"(payload -> 'data' -> 'object') ->> '{field}'", persisted=True), nullable=True))
        op.create_index(f"ix_stripe_events_no_customer_{field}", "stripe_events", [f"object_{field}"],
                        postgresql_where=sa.text("stripe_customer_id IS NULL"))


def downgrade():
    for field in FIELDS:
        op.drop_index(f"ix_stripe_events_no_customer_{field}", table_name="stripe_events")
        op.drop_column("stripe_events", f"object_{field}")
    op.execute("DROP TRIGGER stripe_events_guard_payload ON stripe_events")
    op.execute("DROP FUNCTION guard_stripe_event_payload()")
    op.execute(GUARD_BEFORE)

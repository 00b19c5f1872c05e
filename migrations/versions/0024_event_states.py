"""The archive's processing state in a narrow table of its own: `stripe_event_states` (status, processed_at,
error, tenant_id), one row per archived event, opened as pending by a statement trigger on every insert into
`stripe_events`, whichever path archives it (the webhook, a reconcile walk, a COPY).

Why. Settling an event (pending → processed) was an UPDATE of the wide archive row: a new ~430-byte heap tuple,
an entry in each of its five full indexes (the object-id expression index detoasts the payload for its key) and
~3 KB of WAL with the full-page images of those index pages: 62 µs a row on a 54,000-event archive, 90 µs on a
448,000-event one, the largest single cost of `replay --all` (issue 21). The same move of a ~100-byte row of
`stripe_event_states` costs a few µs. The archive row itself no longer changes after it is stored, except its
stripe_subscription_id, set once from null.

The §4.7 rules move with the columns: the status moves, processed_at and error only with a move, tenant_id set
once from null; no DELETE, no TRUNCATE. The existing states are copied over before the archive's columns are
dropped (dropping a column rewrites no row).

Revision ID: 0024_event_states
"""

from alembic import op

revision = "0024_event_states"
down_revision = "0023_cheaper_archive_writes"
branch_labels = None
depends_on = None

CREATE = """
CREATE TABLE stripe_event_states (
    stripe_event_id text NOT NULL,
    status text DEFAULT 'pending' NOT NULL,
    processed_at timestamptz,
    error text,
    tenant_id text,
    CONSTRAINT pk_stripe_event_states PRIMARY KEY (stripe_event_id),
    CONSTRAINT fk_stripe_event_states_stripe_event_id_stripe_events
        FOREIGN KEY (stripe_event_id) REFERENCES stripe_events (id),
    CONSTRAINT fk_stripe_event_states_tenant_id_tenants FOREIGN KEY (tenant_id) REFERENCES tenants (id),
    CONSTRAINT ck_stripe_event_states_status CHECK (status IN ('pending', 'processed', 'ignored', 'failed'))
);
INSERT INTO stripe_event_states (stripe_event_id, status, processed_at, error, tenant_id)
SELECT id, status, processed_at, error, tenant_id FROM stripe_events;
CREATE INDEX ix_stripe_event_states_tenant_id ON stripe_event_states (tenant_id);
-- The sweeper, the failed-events list and `replay --all` look only at the few rows not processed.
CREATE INDEX ix_stripe_event_states_unsettled ON stripe_event_states (status)
    WHERE status IN ('pending', 'failed', 'ignored');
"""

OPEN = """
CREATE FUNCTION stripe_event_states_open() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO stripe_event_states (stripe_event_id) SELECT id FROM archived;
    RETURN NULL;
END;
$$;
CREATE TRIGGER stripe_events_open_state AFTER INSERT ON stripe_events
    REFERENCING NEW TABLE AS archived FOR EACH STATEMENT EXECUTE FUNCTION stripe_event_states_open();
"""

# The §4.7 refusals on a state's tenant and status, as the archive's trigger (migration 0023) put them.
TENANT_OR_MOVE_REFUSED = """(
    (OLD.tenant_id IS NOT NULL AND NEW.tenant_id IS DISTINCT FROM OLD.tenant_id)
    OR ((NEW.status, NEW.processed_at, NEW.error) IS DISTINCT FROM (OLD.status, OLD.processed_at, OLD.error)
        AND NOT CASE OLD.status
            WHEN 'pending' THEN NEW.status IN ('processed', 'ignored', 'failed')
            WHEN 'ignored' THEN NEW.status IN ('processed', 'failed')
            WHEN 'failed' THEN NEW.status IN ('processed', 'failed')
            ELSE false
        END))"""
STATE_GUARD = """
CREATE FUNCTION guard_stripe_event_state_update() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.stripe_event_id IS DISTINCT FROM OLD.stripe_event_id THEN
        RAISE EXCEPTION USING
            MESSAGE = 'stripe_events ' || OLD.stripe_event_id || ': stripe_event_id cannot change',
            ERRCODE = 'restrict_violation',
            HINT = 'The archive is append-only (DESIGN 4.7).';
    END IF;
    IF OLD.tenant_id IS NOT NULL AND NEW.tenant_id IS DISTINCT FROM OLD.tenant_id THEN
        RAISE EXCEPTION USING
            MESSAGE = 'stripe_events ' || OLD.stripe_event_id || ': tenant_id is already ' || OLD.tenant_id,
            ERRCODE = 'restrict_violation',
            HINT = 'tenant_id may only be set once, from null.';
    END IF;
    RAISE EXCEPTION USING
        MESSAGE = 'stripe_events ' || OLD.stripe_event_id || ': status cannot move from ' || OLD.status
            || ' to ' || NEW.status,
        ERRCODE = 'restrict_violation',
        HINT = 'pending -> processed|ignored|failed, ignored -> processed|failed, '
               'failed -> processed|failed; processed_at and error change only with such a move.';
END;
$$;
CREATE TRIGGER stripe_event_states_guard_update BEFORE UPDATE ON stripe_event_states FOR EACH ROW
WHEN (NEW.stripe_event_id IS DISTINCT FROM OLD.stripe_event_id OR {refused})
EXECUTE FUNCTION guard_stripe_event_state_update();
CREATE TRIGGER stripe_event_states_no_delete BEFORE DELETE ON stripe_event_states
    FOR EACH ROW EXECUTE FUNCTION refuse_append_only_change();
CREATE TRIGGER stripe_event_states_no_truncate BEFORE TRUNCATE ON stripe_event_states
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_append_only_change();
"""

# The archive row's guard (migrations 0003, 0023) without the columns that moved: all is immutable but the
# subscription link. The downgrade puts back the guard those migrations left, built from the same parts.
IMMUTABLE = ("api_version", "id", "payload_hash", "received_at", "recovered_at", "recovery_source", "sequence",
             "stripe_created_at", "stripe_customer_id", "type")
SUBSCRIPTION_LINK = """
    IF OLD.stripe_subscription_id IS NOT NULL
       AND NEW.stripe_subscription_id IS DISTINCT FROM OLD.stripe_subscription_id THEN
        RAISE EXCEPTION USING
            MESSAGE = 'stripe_events ' || OLD.id || ': stripe_subscription_id is already '
                || OLD.stripe_subscription_id,
            ERRCODE = 'restrict_violation',
            HINT = 'stripe_subscription_id may only be set once, from null.';
    END IF;
"""
TENANT_LINK = """
    IF OLD.tenant_id IS NOT NULL AND NEW.tenant_id IS DISTINCT FROM OLD.tenant_id THEN
        RAISE EXCEPTION USING
            MESSAGE = 'stripe_events ' || OLD.id || ': tenant_id is already ' || OLD.tenant_id,
            ERRCODE = 'restrict_violation',
            HINT = 'tenant_id may only be set once, from null.';
    END IF;
"""
MOVES = """
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
"""


def _archive_guard(declare: str, checks: str) -> str:
    changed = ",\n".join(f"        CASE WHEN NEW.{c} IS DISTINCT FROM OLD.{c} THEN '{c}' END" for c in IMMUTABLE)
    return f"""
CREATE OR REPLACE FUNCTION guard_stripe_event_update() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed text;{declare}
BEGIN
    changed := concat_ws(', ',
{changed}
    );
    IF changed <> '' THEN
        RAISE EXCEPTION USING
            MESSAGE = 'stripe_events ' || OLD.id || ': ' || changed || ' cannot change',
            ERRCODE = 'restrict_violation',
            HINT = 'The archive is append-only (DESIGN 4.7).';
    END IF;{checks}
    RETURN NEW;
END;
$$
"""


ARCHIVE_GUARD = _archive_guard("", SUBSCRIPTION_LINK)
OLD_GUARD = _archive_guard("\n    allowed_move boolean;", TENANT_LINK + SUBSCRIPTION_LINK + MOVES)
IMMUTABLE_CHANGED = (f"({', '.join(f'OLD.{c}' for c in IMMUTABLE)}) IS DISTINCT FROM "
                     f"({', '.join(f'NEW.{c}' for c in IMMUTABLE)})"
                     " OR (OLD.stripe_subscription_id IS NOT NULL"
                     " AND NEW.stripe_subscription_id IS DISTINCT FROM OLD.stripe_subscription_id)")
ARCHIVE_REFUSED = IMMUTABLE_CHANGED
OLD_REFUSED = f"{IMMUTABLE_CHANGED} OR {TENANT_OR_MOVE_REFUSED}"


def upgrade():
    op.execute(CREATE)
    op.execute("DROP TRIGGER stripe_events_guard_update ON stripe_events")
    op.execute("DROP INDEX ix_stripe_events_stripe_customer_id_status")
    op.execute("DROP INDEX ix_stripe_events_status_unsettled")
    op.execute("DROP INDEX ix_stripe_events_tenant_id")
    op.execute("ALTER TABLE stripe_events DROP COLUMN status, DROP COLUMN processed_at, DROP COLUMN error, "
               "DROP COLUMN tenant_id")
    op.execute("CREATE INDEX ix_stripe_events_stripe_customer_id ON stripe_events (stripe_customer_id)")
    op.execute(ARCHIVE_GUARD)
    op.execute(f"CREATE TRIGGER stripe_events_guard_update BEFORE UPDATE ON stripe_events FOR EACH ROW "
               f"WHEN ({ARCHIVE_REFUSED}) EXECUTE FUNCTION guard_stripe_event_update()")
    op.execute(OPEN)
    op.execute(STATE_GUARD.replace("{refused}", TENANT_OR_MOVE_REFUSED))


def downgrade():
    op.execute("DROP TRIGGER stripe_events_open_state ON stripe_events")
    op.execute("DROP FUNCTION stripe_event_states_open()")
    op.execute("DROP TRIGGER stripe_events_guard_update ON stripe_events")
    op.execute("ALTER TABLE stripe_events ADD COLUMN tenant_id text, ADD COLUMN status text DEFAULT 'pending' NOT NULL,"
               " ADD COLUMN processed_at timestamptz, ADD COLUMN error text")
    op.execute("ALTER TABLE stripe_events ADD CONSTRAINT fk_stripe_events_tenant_id_tenants "
               "FOREIGN KEY (tenant_id) REFERENCES tenants (id)")
    op.execute("ALTER TABLE stripe_events ADD CONSTRAINT ck_stripe_events_status "
               "CHECK (status IN ('pending', 'processed', 'ignored', 'failed'))")
    op.execute("UPDATE stripe_events AS e SET status = s.status, processed_at = s.processed_at, error = s.error, "
               "tenant_id = s.tenant_id FROM stripe_event_states AS s WHERE s.stripe_event_id = e.id")
    op.execute(OLD_GUARD)
    op.execute(f"CREATE TRIGGER stripe_events_guard_update BEFORE UPDATE ON stripe_events FOR EACH ROW "
               f"WHEN ({OLD_REFUSED}) EXECUTE FUNCTION guard_stripe_event_update()")
    op.execute("DROP INDEX ix_stripe_events_stripe_customer_id")
    op.execute("CREATE INDEX ix_stripe_events_stripe_customer_id_status ON stripe_events (stripe_customer_id, status)")
    op.execute("CREATE INDEX ix_stripe_events_tenant_id ON stripe_events (tenant_id)")
    op.execute("CREATE INDEX ix_stripe_events_status_unsettled ON stripe_events (status, received_at) "
               "WHERE status IN ('pending', 'failed')")
    op.execute("DROP TABLE stripe_event_states")
    op.execute("DROP FUNCTION guard_stripe_event_state_update()")

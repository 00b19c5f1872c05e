"""Only the archive opens a processing state, in place of a foreign key from the state to its archived event.

The foreign key of `stripe_event_states` (migration 0024) was checked on every delivery the webhook archives:
~18 µs of the ~60 µs the archive INSERT with its trigger took on this machine, for a row that only the archive's
own trigger ever inserts. The same promise, every state is an archived event's, now holds by privilege: the
trigger's function runs as the schema's owner (SECURITY DEFINER, with a fixed search_path so that nothing the
caller puts first is called in its place) and the app's role may no longer INSERT a state. Neither table ever
loses a row (§4.7), so no state can outlive its event either.

Revision ID: 0025_states_opened_by_archive
"""

from alembic import op

revision = "0025_states_opened_by_archive"
down_revision = "0024_event_states"
branch_labels = None
depends_on = None

ROLE = "backoffice_runtime"
FOREIGN_KEY = "fk_stripe_event_states_stripe_event_id_stripe_events"

OPEN = """
CREATE OR REPLACE FUNCTION stripe_event_states_open() RETURNS trigger LANGUAGE plpgsql{definer} AS $$
BEGIN
    INSERT INTO stripe_event_states (stripe_event_id) SELECT id FROM archived;
    RETURN NULL;
END;
$$
"""


def upgrade():
    op.execute(f"ALTER TABLE stripe_event_states DROP CONSTRAINT {FOREIGN_KEY}")
    op.execute(OPEN.format(definer="\nSECURITY DEFINER SET search_path = pg_catalog, public"))
    op.execute(f"REVOKE INSERT ON stripe_event_states FROM {ROLE}")


def downgrade():
    op.execute(f"GRANT INSERT ON stripe_event_states TO {ROLE}")
    op.execute(OPEN.format(definer=""))
    op.execute(f"ALTER TABLE stripe_event_states ADD CONSTRAINT {FOREIGN_KEY} "
               "FOREIGN KEY (stripe_event_id) REFERENCES stripe_events (id)")

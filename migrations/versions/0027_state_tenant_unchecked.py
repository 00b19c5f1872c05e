"""A state's tenant is no longer checked against `tenants` by a foreign key (its subscription's already is), nor
indexed (no query looks states up by tenant).

`stripe_event_states.tenant_id` is written by one statement only, the replay's move of a batch's states
(backoffice/billing/replay/writer.py), from the tenant of the subscription the customer's events were linked to;
`subscriptions.tenant_id` has its own foreign key, and a subscription with replayed events keeps ledger rows or
payments that refer to it, so neither it nor its tenant can go. The key's check ran once per settled event, a
row trigger taking a KEY SHARE lock on the tenant: ~7 µs of the ~30 µs each state's move cost the server in
`replay --all` over the 448,440-event archive (issue 21; benchmarks/README.md). Its index, there for that key, served
no query (the failed-events list and the lookups read a state's tenant, they never search by it) and cost each move
another entry: ~2.5 µs a state and a third of the moves' WAL.

Revision ID: 0027_state_tenant_unchecked
"""

from alembic import op

revision = "0027_state_tenant_unchecked"
down_revision = "0026_account_months_by_index"
branch_labels = None
depends_on = None

FOREIGN_KEY = "fk_stripe_event_states_tenant_id_tenants"
INDEX = "ix_stripe_event_states_tenant_id"


def upgrade():
    op.execute(f"ALTER TABLE stripe_event_states DROP CONSTRAINT {FOREIGN_KEY}")
    op.execute(f"DROP INDEX {INDEX}")


def downgrade():
    op.execute(f"CREATE INDEX {INDEX} ON stripe_event_states (tenant_id)")
    op.execute(f"ALTER TABLE stripe_event_states ADD CONSTRAINT {FOREIGN_KEY} "
               "FOREIGN KEY (tenant_id) REFERENCES tenants (id)")

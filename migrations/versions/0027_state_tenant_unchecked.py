"""A state's tenant is no longer checked against `tenants` by a foreign key: its subscription's already is.

`stripe_event_states.tenant_id` is written by one statement only, the replay's move of a batch's states
(backoffice/billing/replay/writer.py), from the tenant of the subscription the customer's events were linked to;
`subscriptions.tenant_id` has its own foreign key, and a subscription with replayed events keeps ledger rows or
payments that refer to it, so neither it nor its tenant can go. The key's check ran once per settled event, a
row trigger taking a KEY SHARE lock on the tenant: ~7 µs of the ~30 µs each state's move cost the server in
`replay --all` over the 448,440-event archive (issue 21; benchmarks/README.md).

Revision ID: 0027_state_tenant_unchecked
"""

from alembic import op

revision = "0027_state_tenant_unchecked"
down_revision = "0026_account_months_by_index"
branch_labels = None
depends_on = None

FOREIGN_KEY = "fk_stripe_event_states_tenant_id_tenants"


def upgrade():
    op.execute(f"ALTER TABLE stripe_event_states DROP CONSTRAINT {FOREIGN_KEY}")


def downgrade():
    op.execute(f"ALTER TABLE stripe_event_states ADD CONSTRAINT {FOREIGN_KEY} "
               "FOREIGN KEY (tenant_id) REFERENCES tenants (id)")

"""Find rows by a pasted id: a subscription by its Stripe subscription id, an archived event by its object's id.

A search that is a whole id (`sub_…`, `in_…`, `ch_…`, `re_…`, `cn_…`) is an equality on these, as the customer id
(unique) and the event id (primary key) already are. The object's id is written as `payload_object_field` spells
the archive's other expression indexes, so that the lookup's literal expression matches it.

Revision ID: 0017_id_lookup
"""

from alembic import op

revision = "0017_id_lookup"
down_revision = "0016_runtime_role"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE INDEX ix_subscriptions_stripe_subscription_id ON subscriptions (stripe_subscription_id)")
    op.execute("CREATE INDEX ix_stripe_events_object_id ON stripe_events ((((payload -> 'data') -> 'object') ->> 'id'))")


def downgrade():
    op.execute("DROP INDEX ix_stripe_events_object_id")
    op.execute("DROP INDEX ix_subscriptions_stripe_subscription_id")

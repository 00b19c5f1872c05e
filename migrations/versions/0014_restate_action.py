"""Restatement (DESIGN §4.6) is an audited operator action: `restate` joins the actions the audit log admits.

Revision ID: 0014_restate_action
"""

from alembic import op

revision = "0014_restate_action"
down_revision = "0013_invoice_totals"
branch_labels = None
depends_on = None

# Spelled out, not imported: a migration creates what it says, whatever the live code later lists.
BEFORE = ("sync", "reconcile", "acknowledge_drift", "disaster_recovery", "retry_event", "sweep", "replay",
          "rebuild_rollups")
AFTER = (*BEFORE, "restate")


def _allow(actions: tuple[str, ...]) -> None:
    op.drop_constraint(op.f("ck_operator_actions_action"), "operator_actions", type_="check")
    op.create_check_constraint(op.f("ck_operator_actions_action"), "operator_actions",
                               "action IN ({})".format(", ".join(f"'{action}'" for action in actions)))


def upgrade() -> None:
    _allow(AFTER)


def downgrade() -> None:
    _allow(BEFORE)

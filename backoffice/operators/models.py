"""Backoffice's own people: operators, as the proxy last described them, and their audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backoffice.extensions import db

# Adding an action means adding it here and to the CHECK in a migration: the audit log stays readable.
OPERATOR_ACTIONS = (
    "sync",
    "reconcile",
    "acknowledge_drift",
    "disaster_recovery",
    "retry_event",
    "sweep",
    "replay",
    "rebuild_rollups",
    "restate",
)
# An audit entry is kept forever (append-only): a reason says why in a few sentences, not in a pasted log.
MAX_REASON_LENGTH = 1_000


class Operator(db.Model):
    """A person who used the console, upserted from the proxy's headers at most once a minute."""

    __tablename__ = "operators"

    # The proxy's principal id.
    id: Mapped[str] = mapped_column(sa.Text, primary_key=True)
    name: Mapped[str] = mapped_column(sa.Text)
    email: Mapped[str | None] = mapped_column(sa.Text)
    # As last seen: the proxy's groups decide, this only records them.
    is_admin: Mapped[bool] = mapped_column(sa.Boolean, server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    last_seen_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())
    preferences: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sa.text("'{}'::jsonb"))


class OperatorAction(db.Model):
    """One audited admin action with its reason (append-only, enforced by trigger)."""

    __tablename__ = "operator_actions"
    __table_args__ = (
        sa.CheckConstraint(
            "action IN ({})".format(", ".join(f"'{action}'" for action in OPERATOR_ACTIONS)), name="action"
        ),
        sa.CheckConstraint("btrim(reason) <> ''", name="reason_not_blank"),
        sa.Index("ix_operator_actions_at", sa.text("at DESC")),
        sa.Index("ix_operator_actions_operator_id_at", "operator_id", sa.text("at DESC")),
        sa.Index("ix_operator_actions_target_tenant_id_at", "target_tenant_id", sa.text("at DESC")),
    )

    # An identity: audit entries are never addressed from outside, only listed in order.
    id: Mapped[int] = mapped_column(sa.BigInteger, sa.Identity(), primary_key=True)
    operator_id: Mapped[str] = mapped_column(sa.Text, sa.ForeignKey("operators.id"))
    action: Mapped[str] = mapped_column(sa.Text)
    target_tenant_id: Mapped[str | None] = mapped_column(sa.Text, sa.ForeignKey("tenants.id"))
    reason: Mapped[str] = mapped_column(sa.Text)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=sa.text("'{}'::jsonb"))
    # Known when the entry is written (e.g. the job id): the row is never updated afterwards.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), server_default=sa.func.now())

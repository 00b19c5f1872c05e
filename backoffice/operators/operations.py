"""Writes about operators: sign-in bookkeeping and preferences."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from backoffice.extensions import db
from backoffice.operators.identity import Identity
from backoffice.operators.models import Operator

# The operators row is a record of who used the console, not a session store: a minute is fresh enough.
SEEN_RESOLUTION = timedelta(minutes=1)

PREFERENCE_KEYS = {"kiosk", "locale", "theme"}


def record_operator(identity: Identity, now: datetime) -> dict[str, Any]:
    """Upsert the operator at most once a minute and return their preferences."""
    row = db.session.execute(
        select(Operator.last_seen_at, Operator.preferences, Operator.is_admin).where(Operator.id == identity.principal_id)
    ).first()
    if row is not None and row.last_seen_at > now - SEEN_RESOLUTION and row.is_admin == identity.is_admin:
        return dict(row.preferences or {})
    statement = insert(Operator).values(
        id=identity.principal_id,
        name=identity.display_name,
        email=identity.name,
        is_admin=identity.is_admin,
        last_seen_at=now,
        preferences={},
    )
    statement = statement.on_conflict_do_update(
        index_elements=[Operator.id],
        set_={
            "name": statement.excluded.name,
            "email": statement.excluded.email,
            "is_admin": statement.excluded.is_admin,
            "last_seen_at": statement.excluded.last_seen_at,
        },
    ).returning(Operator.preferences)
    preferences = db.session.execute(statement).scalar_one()
    db.session.commit()
    return dict(preferences or {})


def set_preference(operator_id: str, key: str, value: Any) -> dict[str, Any]:
    """Store one preference of an operator and return them all."""
    if key not in PREFERENCE_KEYS:
        raise ValueError(f"unknown preference {key!r}")
    operator = db.session.get(Operator, operator_id)
    if operator is None:
        raise LookupError(f"unknown operator {operator_id!r}")
    operator.preferences = {**(operator.preferences or {}), key: value}
    db.session.commit()
    return dict(operator.preferences)

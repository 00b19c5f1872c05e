"""Small periodic tasks that keep the platform's own bookkeeping."""
from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert

from backoffice.billing.models import SyncState
from backoffice.extensions import db


def record_heartbeat(source: str) -> str:
    """Record in sync_state that `source` (the scheduler, a worker) is alive; return the time written."""
    now = datetime.now(UTC)
    statement = insert(SyncState).values(key=f"heartbeat:{source}", value={"at": now.isoformat()}, updated_at=now)
    db.session.execute(
        statement.on_conflict_do_update(
            index_elements=[SyncState.key],
            set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at},
        )
    )
    db.session.commit()
    return now.isoformat()


def compact_metric_totals() -> int:
    """Fold the SaaS metrics' appended month totals into one row per month and currency, so that reading a month's
    totals stays a few rows per month of history (read_models/account_month_totals.py); return the rows saved."""
    saved = int(db.session.execute(text("SELECT account_month_totals_compact()")).scalar_one())
    db.session.commit()
    return saved

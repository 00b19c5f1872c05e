"""The jobs page: the latest drift sweep, the subscriptions due now, the Stripe budget the sweep draws on, and the
heartbeats of the worker and scheduler processes."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from backoffice.billing.reconcile.sweep import SweepState, due_count, read_state
from backoffice.liveness import ProcessBeat, read_beats
from backoffice.stripe_gateway import rate_budget


@dataclass(frozen=True)
class SweepStatus:
    state: SweepState | None
    due: int
    rate: float | None  # requests per second the configured key may make; None without a key
    shared: bool  # the budget lives in Redis, shared by every worker, rather than in this process
    stripe_configured: bool
    processes: tuple[ProcessBeat, ...] = ()  # workers and schedulers heard from in the last hour


def sweep_status(session: Session, settings: Mapping[str, Any], now: datetime) -> SweepStatus:
    """The sweep as of `now`, and the budget the gateway would be built with from these settings."""
    return SweepStatus(state=read_state(session), due=due_count(session, now), rate=rate_budget(settings),
                       shared=bool(settings.get("REDIS_URL")), stripe_configured=bool(settings.get("STRIPE_SECRET_KEY")),
                       processes=tuple(read_beats(session, now, settings.get("HEARTBEAT_SECONDS", 10))))

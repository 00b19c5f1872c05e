"""The periodic jobs the scheduler enqueues (DESIGN §1). Later features add their entries here."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PeriodicJob:
    """A task path, the queue it goes to, and how often it runs."""

    task: str
    queue: str
    interval_seconds: int
    args: tuple = ()


PERIODIC_JOBS: tuple[PeriodicJob, ...] = (
    PeriodicJob("backoffice.housekeeping.record_heartbeat", "low", 60, ("scheduler",)),
)

# Modules a worker imports before it forks, so each job starts warm.
TASK_MODULES: tuple[str, ...] = ("backoffice.housekeeping",)

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
    name: str = "startup"

    @property
    def job_id(self) -> str:
        """The id that keeps one such job queued at a time, across every process that queues it."""
        return f"{self.name}-" + self.task.replace(".", "-")


PERIODIC_JOBS: tuple[PeriodicJob, ...] = (
    PeriodicJob("backoffice.housekeeping.record_heartbeat", "low", 60, ("scheduler",)),
    PeriodicJob("backoffice.housekeeping.compact_metric_totals", "low", 600),
    PeriodicJob("backoffice.billing.replay.tasks.sweep_pending", "default", 60),
    PeriodicJob("backoffice.billing.replay.tasks.recheck_ignored", "low", 3600),
    PeriodicJob("backoffice.billing.replay.tasks.refresh_catalog", "low", 3600),
    # The platform-wide events.list walk that recovers missed webhooks (DESIGN §2.3).
    PeriodicJob("backoffice.billing.reconcile.tasks.walk_job", "default", 300),
    # The daily drift sweep (DESIGN §2.4); its chunk jobs spread over every worker.
    PeriodicJob("backoffice.billing.reconcile.tasks.sweep_job", "low", 86400),
)

# Modules a worker imports before it forks, so each job starts warm.
TASK_MODULES: tuple[str, ...] = (
    "backoffice.housekeeping", "backoffice.billing.replay.tasks", "backoffice.billing.reconcile.tasks")
# Enqueued once when a worker starts (deduplicated by job id across workers).
STARTUP_JOBS: tuple[PeriodicJob, ...] = (PeriodicJob("backoffice.billing.replay.tasks.refresh_catalog", "low", 0),)
# Enqueued when a worker or the scheduler reaches Redis again, and when a worker sees PostgreSQL come back: a sweep
# of everything pending however young (events archived while Redis was away were never queued; replays that failed
# on the database are pending again), on the high queue so it runs before the backlog it queues.
CATCH_UP_JOBS: tuple[PeriodicJob, ...] = (
    PeriodicJob("backoffice.billing.replay.tasks.sweep_pending", "high", 0, (0,), name="catch-up"),)

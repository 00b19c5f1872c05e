"""The periodic-job scheduler, driven a few seconds at a time so that an outage and its end are noticed at once."""
from __future__ import annotations

import logging

from redis.exceptions import RedisError
from rq.cron import CronScheduler

from backoffice.jobs import redis_connection, resolve
from backoffice.schedule import PERIODIC_JOBS
from backoffice.workers.heartbeat import Heartbeat
from backoffice.workers.redis_wait import StopFlag, catch_up, wait_for_redis

log = logging.getLogger("backoffice.worker")

# How often the scheduler looks at Redis between jobs (RQ's own loop sleeps up to a minute).
SCHEDULER_TICK_SECONDS = 2.0


def schedule(app, url: str) -> int:
    """Enqueue the periodic jobs until stopped, waiting out every Redis outage and catching up after each.

    RQ's CronScheduler.start() sleeps up to a minute between jobs and ends on the first Redis error; this loop
    drives the same scheduler a few seconds at a time, so an outage is noticed (and its end caught up) within
    SCHEDULER_TICK_SECONDS, and an error waits for Redis instead of ending the process.
    """
    timeout = app.config["REDIS_WORKER_SOCKET_TIMEOUT"]
    connection = redis_connection(url, timeout)
    heartbeat = Heartbeat(app, "scheduler")
    heartbeat.start()
    stop = StopFlag()
    # One scheduler across outages: its jobs keep their next times, so a reconnect does not rerun the daily sweep.
    scheduler = CronScheduler(connection=connection, name="backoffice-scheduler")
    for periodic in PERIODIC_JOBS:
        scheduler.register(resolve(periodic.task), periodic.queue, args=periodic.args,
                           interval=periodic.interval_seconds)
    try:
        while wait_for_redis(connection, heartbeat, stop):
            try:
                scheduler.register_birth()
                catch_up(app)
                while not stop.is_set:
                    if scheduler.enqueue_jobs():
                        scheduler.save()
                    scheduler.heartbeat()
                    stop.event.wait(max(0.0, min(scheduler.calculate_sleep_interval(), SCHEDULER_TICK_SECONDS)))
            except RedisError as error:
                log.warning("scheduler lost Redis: %s: %s", type(error).__name__, error)
                heartbeat.redis_lost()
                continue
            _register_death(scheduler)
            return 0
        return 0
    finally:
        heartbeat.stop()


def _register_death(scheduler: CronScheduler) -> None:
    try:
        scheduler.register_death()
    except RedisError:
        pass  # its registry entry expires by itself

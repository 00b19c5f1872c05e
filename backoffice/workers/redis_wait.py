"""Waiting Redis out, and catching up once it answers: what both the worker and the scheduler do after an outage."""
from __future__ import annotations

import logging
import signal
import threading

from redis import Redis
from redis.exceptions import RedisError

from backoffice.jobs import enqueue
from backoffice.schedule import CATCH_UP_JOBS, STARTUP_JOBS
from backoffice.workers.heartbeat import Heartbeat

log = logging.getLogger("backoffice.worker")

RETRY_FIRST_SECONDS = 0.5
# Capped low: the wait after Redis returns is at most this long, and the catch-up must finish within 30 s.
RETRY_CAP_SECONDS = 5.0


class StopFlag:
    """SIGTERM/SIGINT while waiting for Redis: stop instead of retrying (RQ installs its own while it works)."""

    def __init__(self):
        self.event = threading.Event()

    def install(self) -> None:
        for number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(number, lambda *_: self.event.set())

    @property
    def is_set(self) -> bool:
        return self.event.is_set()


def wait_for_redis(probe: Redis, heartbeat: Heartbeat, stop: StopFlag) -> bool:
    """Ping Redis until it answers, backing off (capped), one log line per attempt; False when asked to stop."""
    stop.install()
    delay, attempt = RETRY_FIRST_SECONDS, 0
    while not stop.is_set:
        try:
            probe.ping()
        except RedisError as error:
            attempt += 1
            heartbeat.redis_lost()
            log.warning("%s waiting for Redis (%s: %s): attempt %d, next in %.1f s", heartbeat.role,
                        type(error).__name__, error, attempt, delay)
            stop.event.wait(delay)
            delay = min(delay * 2, RETRY_CAP_SECONDS)
            continue
        if attempt:
            log.info("%s reached Redis again after %d attempts", heartbeat.role, attempt)
        heartbeat.redis_back()
        return True
    return False


def catch_up(app, *, startup: bool = False) -> None:
    """Queue the catch-up jobs (and, as a worker starts, the startup jobs); deduplicated by job id across processes."""
    jobs = (STARTUP_JOBS if startup else ()) + CATCH_UP_JOBS
    try:
        with app.app_context():
            for job in jobs:
                enqueue(job.task, *job.args, queue=job.queue, job_id=job.job_id)
    except RedisError as error:
        log.warning("catch-up not queued, Redis unavailable: %s", type(error).__name__)

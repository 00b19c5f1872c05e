"""RQ worker (and, with --scheduler, the periodic-job scheduler) for Backoffice.

    python worker.py                 # serve the high, default and low queues
    python worker.py --burst         # drain the queues and exit (tests, one-off runs)
    python worker.py --scheduler     # enqueue the periodic jobs of backoffice/schedule.py

Like wsgi.py, it takes its settings from the environment alone: DATABASE_URL, SECRET_KEY and REDIS_URL.

Both ride out a Redis outage: they retry with a capped backoff (one log line per attempt) instead of exiting, and
when Redis answers again they queue the catch-up jobs (a sweep of everything pending) at once. Each writes a
heartbeat row to PostgreSQL (backoffice/liveness.py) that the jobs page and /readyz show; the worker also queues
the catch-up when PostgreSQL comes back, so replays that failed meanwhile do not wait for the next sweep.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.cron import CronScheduler
from rq.exceptions import StopRequested
from sqlalchemy.exc import SQLAlchemyError

from backoffice.config import create_app_or_exit
from backoffice.jobs import QUEUES, enqueue, redis_connection, resolve
from backoffice.liveness import REDIS_OK, REDIS_WAITING, forget_beat, write_beat
from backoffice.logs import log_job
from backoffice.schedule import CATCH_UP_JOBS, PERIODIC_JOBS, STARTUP_JOBS, TASK_MODULES

log = logging.getLogger("backoffice.worker")

RETRY_FIRST_SECONDS = 0.5
# Capped low: the wait after Redis returns is at most this long, and the catch-up must finish within 30 s.
RETRY_CAP_SECONDS = 5.0
# How often the scheduler looks at Redis between jobs (RQ's own loop sleeps up to a minute).
SCHEDULER_TICK_SECONDS = 2.0
# The worker's registries are cleaned (and its RQ scheduler restarted, should it have died with Redis) this often.
MAINTENANCE_SECONDS = 30


def build_worker_class(app, heartbeat: Heartbeat | None = None, stop: StopFlag | None = None):
    """Return a Worker that runs each job inside the app context and logs it as one JSON line.

    Jobs run in the worker process itself (RQ's SimpleWorker), not in a fork per job: a replay takes tens
    of milliseconds, a fork and fresh database connections as long again. The app, its connection pool and
    the task modules stay warm; a job's timeout still stops it.

    With a heartbeat, the worker reports Redis lost and back as RQ's own loop sees it (RQ retries a lost
    connection itself while it waits for jobs), and queues the catch-up the moment Redis answers again.
    """
    from backoffice.extensions import db

    class AppWorker(SimpleWorker):
        # RQ's own retry while it waits for jobs backs off to a minute; the catch-up must not wait that long.
        max_connection_wait_time = RETRY_CAP_SECONDS

        def perform_job(self, job, queue, *args, **kwargs):
            started = time.perf_counter()
            with app.app_context():
                try:
                    return super().perform_job(job, queue, *args, **kwargs)
                finally:
                    db.session.remove()
                    status = job.get_status(refresh=False)
                    log_job(job.func_name, job.id, started, str(getattr(status, "value", status)))

        def heartbeat(self, *args, **kwargs):
            if heartbeat is None or kwargs.get("pipeline") is not None:
                return super().heartbeat(*args, **kwargs)
            try:
                result = super().heartbeat(*args, **kwargs)
            except RedisError:
                heartbeat.redis_lost()
                raise
            if heartbeat.redis != REDIS_OK:
                heartbeat.redis_back()
                log.info("worker reached Redis again: queueing the catch-up")
                catch_up(app)
            return result

        def unsubscribe(self):
            # RQ stops its command listener and waits for it; once unsubscribed, redis-py's listener waits out RQ's
            # 60 s poll before it looks at its stop flag, so every shutdown took a minute. Bounded here.
            if self.pubsub_thread:
                self.pubsub_thread.stop(timeout=0.5)
                try:
                    self.pubsub.unsubscribe()
                except RedisError:
                    pass  # Redis away: the listener's connection is gone with it
                self.pubsub_thread = None

        def request_stop(self, signum, frame):
            if stop is not None:
                stop.event.set()
            try:
                super().request_stop(signum, frame)
            except RedisError:
                # RQ asks Redis whether a job is running; with Redis away none can be: stop now.
                raise StopRequested() from None

    return AppWorker


class Heartbeat(threading.Thread):
    """Write this process's heartbeat row every HEARTBEAT_SECONDS, and notice PostgreSQL coming back."""

    def __init__(self, app, role: str, on_database_back: Callable[[], None] | None = None):
        super().__init__(name=f"heartbeat-{role}", daemon=True)
        self.app = app
        self.role = role
        self.process = f"{role}:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.interval = float(app.config["HEARTBEAT_SECONDS"])
        self.on_database_back = on_database_back
        self.redis = REDIS_WAITING
        self.redis_since: datetime | None = datetime.now(UTC)
        self.stopping = threading.Event()
        self.changed = threading.Event()

    def redis_lost(self) -> None:
        if self.redis == REDIS_OK:
            self.redis, self.redis_since = REDIS_WAITING, datetime.now(UTC)
            self.changed.set()

    def redis_back(self) -> None:
        if self.redis != REDIS_OK:
            self.redis, self.redis_since = REDIS_OK, None
            self.changed.set()

    def run(self) -> None:
        database_up = True
        while not self.stopping.is_set():
            beaten = self.beat()
            if beaten and not database_up and self.on_database_back is not None:
                log.info("PostgreSQL is back: queueing the catch-up")
                self.on_database_back()
            database_up = beaten
            # While PostgreSQL is away, look every second: the catch-up starts as soon as it is back.
            self.changed.wait(self.interval if beaten else 1.0)
            self.changed.clear()

    def stop(self) -> None:
        self.stopping.set()
        self.changed.set()
        self.join(timeout=5)
        try:
            with self.app.app_context():
                from backoffice.extensions import db

                with db.engine.begin() as connection:
                    forget_beat(connection, self.process)
        except SQLAlchemyError:
            pass  # the row goes silent and is no longer shown after an hour

    def beat(self) -> bool:
        from backoffice.extensions import db

        try:
            with self.app.app_context(), db.engine.begin() as connection:
                write_beat(connection, self.role, self.process, self.redis, self.redis_since, datetime.now(UTC))
            return True
        except SQLAlchemyError as error:
            log.warning("%s heartbeat not written, PostgreSQL unavailable: %s", self.role, type(error).__name__)
            return False


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


def serve(app, url: str, queue_names: list[str], burst: bool) -> int:
    """Work the queues until stopped, waiting out every Redis outage and catching up after each."""
    timeout = app.config["REDIS_WORKER_SOCKET_TIMEOUT"]
    # RQ raises the socket timeout above its blocking dequeue; the connect timeout keeps a dead host from hanging it.
    connection = Redis.from_url(url, socket_connect_timeout=timeout)
    probe = redis_connection(url, timeout)
    heartbeat = Heartbeat(app, "worker", on_database_back=lambda: catch_up(app))
    heartbeat.start()
    stop = StopFlag()
    worker_class = build_worker_class(app, heartbeat, stop)
    previous = None
    try:
        while wait_for_redis(probe, heartbeat, stop):
            if previous is not None and previous.scheduler is not None:
                _release_scheduler_locks(previous)
            catch_up(app, startup=True)
            queues = [Queue(name, connection=connection) for name in queue_names]
            worker = previous = worker_class(queues, connection=connection, maintenance_interval=MAINTENANCE_SECONDS)
            try:
                # The scheduler moves jobs queued for later (a replay waiting for its customer to settle) onto the queues.
                worker.work(burst=burst, with_scheduler=True)
            except RedisError as error:
                log.warning("worker lost Redis: %s: %s", type(error).__name__, error)
            _stop_listening(worker)
            if burst or stop.is_set or worker._stop_requested:
                return 0
            heartbeat.redis_lost()
        return 0
    finally:
        heartbeat.stop()


def _stop_listening(worker) -> None:
    # RQ stops its command listener in teardown only after telling Redis the worker died; with Redis away that
    # fails first, and the listener thread would outlive its worker, one more per outage.
    thread = getattr(worker, "pubsub_thread", None)
    if thread is not None and thread.is_alive():
        thread.stop(timeout=0.5)


def _release_scheduler_locks(worker) -> None:
    # The RQ scheduler that died with the connection may still hold its queue locks; the new one takes them now
    # rather than a minute later, or the replays queued for later would wait.
    try:
        worker.scheduler.release_locks()
    except RedisError:
        pass


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", action="store_true", help="exit once the queues are empty")
    parser.add_argument("--scheduler", action="store_true", help="run the periodic-job scheduler instead of a worker")
    parser.add_argument("--queues", default=",".join(QUEUES), help="comma-separated queues, highest priority first")
    options = parser.parse_args(argv)

    app = create_app_or_exit()
    url = app.config["REDIS_URL"]
    if not url:
        print("backoffice: REDIS_URL is not set: jobs run in-process inside the web app, no worker is needed",
              file=sys.stderr)
        return 2
    # A job may wait for Redis: it has no request to answer, and failing it would only queue the work again.
    app.config["REDIS_SOCKET_TIMEOUT"] = app.config["REDIS_WORKER_SOCKET_TIMEOUT"]
    if options.scheduler:
        return schedule(app, url)
    for module in TASK_MODULES:
        importlib.import_module(module)
    return serve(app, url, [name.strip() for name in options.queues.split(",") if name.strip()], options.burst)


if __name__ == "__main__":
    sys.exit(main())

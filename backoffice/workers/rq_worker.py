"""The RQ worker: jobs run in the app's context, one log line each, and Redis outages waited out."""
from __future__ import annotations

import logging
import time

from redis import Redis
from redis.exceptions import RedisError
from rq import Queue, SimpleWorker
from rq.exceptions import StopRequested

from backoffice.extensions import db
from backoffice.jobs import redis_connection
from backoffice.liveness import REDIS_OK
from backoffice.logs import log_job
from backoffice.workers.heartbeat import Heartbeat
from backoffice.workers.job_pulse import JobPulse
from backoffice.workers.redis_wait import RETRY_CAP_SECONDS, StopFlag, catch_up, wait_for_redis

log = logging.getLogger("backoffice.worker")

# The worker's registries are cleaned (and its RQ scheduler restarted, should it have died with Redis) this often.
MAINTENANCE_SECONDS = 30


def build_worker_class(app, heartbeat: Heartbeat | None = None, stop: StopFlag | None = None):
    """Return a Worker that runs each job inside the app context and logs it as one JSON line.

    Jobs run in the worker process itself (RQ's SimpleWorker), not in a fork per job: a replay takes tens
    of milliseconds, a fork and fresh database connections as long again. The app, its connection pool and
    the task modules stay warm; a job's timeout still stops it.

    With a heartbeat, the worker reports Redis lost and back as RQ's own loop sees it (RQ retries a lost
    connection itself while it waits for jobs), and queues the catch-up the moment Redis answers again.

    Each job's pulse beats from before RQ marks it started until it ends (workers/job_pulse.py); the class's
    `pulse` is stopped when the worker is done with.
    """
    class AppWorker(SimpleWorker):
        # RQ's own retry while it waits for jobs backs off to a minute; the catch-up must not wait that long.
        max_connection_wait_time = RETRY_CAP_SECONDS
        pulse = JobPulse(redis_connection(app.config["REDIS_URL"], app.config["REDIS_WORKER_SOCKET_TIMEOUT"]))

        def perform_job(self, job, queue, *args, **kwargs):
            started = time.perf_counter()
            self.pulse.begin(job.id)
            with app.app_context():
                try:
                    return super().perform_job(job, queue, *args, **kwargs)
                finally:
                    self.pulse.end(job.id)
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
        worker_class.pulse.stop()
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

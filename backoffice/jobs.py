"""The only door to RQ: enqueue a task and read a job's status.

With REDIS_URL set, jobs go to RQ queues served by `worker.py`. Without it (the demo), jobs run
in-process on a small thread pool with the same interface, so progress polling behaves the same.
"""
from __future__ import annotations

import functools
import importlib
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Flask, current_app

from backoffice.logs import log_job

QUEUES = ("high", "default", "low")
TERMINAL = {"finished", "failed", "stopped", "canceled"}


@dataclass
class JobStatus:
    """What a page shows about a job: its state, progress metadata and result or error."""

    id: str
    name: str
    status: str
    meta: dict[str, Any] = field(default_factory=dict)
    result: Any = None
    error: str | None = None
    enqueued_at: datetime | None = None
    ended_at: datetime | None = None

    @property
    def ended(self) -> bool:
        return self.status in TERMINAL


class InProcessJob:
    """A job run inside the web process; mirrors the parts of rq.Job that tasks use."""

    def __init__(self, job_id: str, name: str):
        self.id = job_id
        self.name = name
        self.meta: dict[str, Any] = {}
        self.status = "queued"
        self.result: Any = None
        self.error: str | None = None
        self.enqueued_at = datetime.now(UTC)
        self.ended_at: datetime | None = None

    def save_meta(self) -> None:
        """Nothing to persist: the meta lives in this object."""

    def as_status(self) -> JobStatus:
        return JobStatus(self.id, self.name, self.status, dict(self.meta), self.result, self.error,
                         self.enqueued_at, self.ended_at)


_current_in_process: ContextVar[InProcessJob | None] = ContextVar("current_in_process_job", default=None)


class InProcessRunner:
    """Run jobs on a thread pool inside the app, keeping their status in memory."""

    def __init__(self, app: Flask, workers: int = 2):
        self.app = app
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backoffice-job")
        self.jobs: dict[str, InProcessJob] = {}
        self.lock = threading.Lock()
        self.queued_keys: set[str] = set()
        self.deferred: list[tuple[InProcessJob, tuple[Any, ...], dict[str, Any]]] = []

    def submit(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], job_id: str,
               delay: float = 0) -> JobStatus:
        with self.lock:
            existing = self.jobs.get(job_id)
            if existing is not None and not existing.as_status().ended:
                return existing.as_status()  # one live job per id, as RQ's deduplication gives
            job = self.jobs[job_id] = InProcessJob(job_id, name)
        if self.app.config.get("IN_PROCESS_JOBS") == "deferred":
            with self.lock:
                self.deferred.append((time.monotonic() + delay, job, args, kwargs))
        elif delay > 0:
            timer = threading.Timer(delay, self.pool.submit, (self._run, job, args, kwargs))
            timer.daemon = True
            timer.start()
        else:
            self.pool.submit(self._run, job, args, kwargs)
        return job.as_status()

    def forget(self) -> None:
        """Drop every deferred job and its dedup key: the caller does their work itself (a demo load's one replay)."""
        with self.lock:
            self.deferred.clear()
            self.queued_keys.clear()

    def drain(self) -> int:
        """Run the deferred jobs that are due, in this thread, until none is (a burst worker); return how many ran."""
        return self.run_deferred()

    def run_deferred(self) -> int:
        """Run the deferred jobs that are due, in this thread, until none is (a burst worker); return how many ran."""
        ran = 0
        while True:
            with self.lock:
                due = [entry for entry in self.deferred if entry[0] <= time.monotonic()]
                if not due:
                    return ran
                self.deferred.remove(due[0])
            _, job, args, kwargs = due[0]
            self._run(job, args, kwargs)
            ran += 1

    def _run(self, job: InProcessJob, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        token = _current_in_process.set(job)
        started = time.perf_counter()
        job.status = "started"
        try:
            with self.app.app_context():
                job.result = resolve(job.name)(*args, **kwargs)
            job.status = "finished"
        except Exception as error:  # the job's failure is its result; the log keeps the traceback
            job.status = "failed"
            job.error = f"{type(error).__name__}: {error}"
            self.app.logger.exception("in-process job %s failed", job.name)
        finally:
            job.ended_at = datetime.now(UTC)
            _current_in_process.reset(token)
            log_job(job.name, job.id, started, job.status)

    def status(self, job_id: str) -> JobStatus | None:
        job = self.jobs.get(job_id)
        return job.as_status() if job else None


def resolve(name: str) -> Callable[..., Any]:
    """Import a task by its dotted path."""
    module, _, attribute = name.rpartition(".")
    return getattr(importlib.import_module(module), attribute)


def task_name(task: Callable[..., Any] | str) -> str:
    """Return the dotted path RQ stores for a task."""
    return task if isinstance(task, str) else f"{task.__module__}.{task.__qualname__}"


@functools.lru_cache(maxsize=8)
def redis_connection(url: str):
    """Return the process's Redis client for a URL (one connection pool, reused by every request)."""
    from redis import Redis

    return Redis.from_url(url)


ONCE_PREFIX = "backoffice:queued:"
ONCE_TTL_SECONDS = 3600


def enqueue_once(key: str, task: Callable[..., Any] | str, *args: Any, queue: str = "default",
                 delay: float = 0, **kwargs: Any) -> bool:
    """Queue a task unless one with this key is queued and not yet started; tell whether it queued one.

    A started job does not count: work that arrives while it runs needs another run. The task calls
    `claim_once(key)` as it starts. The marker expires, so a job lost with its worker cannot block the key.
    With `delay`, the job is queued that many seconds from now (RQ's scheduler, or a timer in-process).
    """
    url = current_app.config["REDIS_URL"]
    if not url:
        runner = in_process_runner(current_app._get_current_object())
        with runner.lock:
            if key in runner.queued_keys:
                return False
            runner.queued_keys.add(key)
    elif not redis_connection(url).set(ONCE_PREFIX + key, "1", nx=True, ex=ONCE_TTL_SECONDS):
        return False
    if delay > 0:
        enqueue_in(delay, task, *args, queue=queue, **kwargs)
    else:
        enqueue(task, *args, queue=queue, **kwargs)
    return True


def enqueue_in(delay: float, task: Callable[..., Any] | str, *args: Any, queue: str = "default", **kwargs: Any) -> None:
    """Queue a task `delay` seconds from now, without holding a worker meanwhile."""
    url = current_app.config["REDIS_URL"]
    if not url:
        in_process_runner(current_app._get_current_object()).submit(task_name(task), args, kwargs, uuid.uuid4().hex,
                                                                    delay=delay)
        return
    from datetime import timedelta

    from rq import Queue

    Queue(queue, connection=redis_connection(url)).enqueue_in(timedelta(seconds=delay), task_name(task), *args, **kwargs)


def claim_once(key: str) -> None:
    """Let the next `enqueue_once(key, …)` queue again: called by the task as it starts its work."""
    url = current_app.config["REDIS_URL"]
    if not url:
        runner = in_process_runner(current_app._get_current_object())
        with runner.lock:
            runner.queued_keys.discard(key)
    else:
        redis_connection(url).delete(ONCE_PREFIX + key)


def enqueue(task: Callable[..., Any] | str, *args: Any, queue: str = "default", job_id: str | None = None,
            timeout: int = 600, **kwargs: Any) -> JobStatus:
    """Queue a task (taking ids and plain values) and return its status; a live job with the same id is reused."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; use one of {', '.join(QUEUES)}")
    name = task_name(task)
    given_id = job_id is not None
    job_id = job_id or uuid.uuid4().hex
    url = current_app.config["REDIS_URL"]
    if not url:
        return in_process_runner(current_app._get_current_object()).submit(name, args, kwargs, job_id)
    from rq import Queue
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    connection = redis_connection(url)
    if given_id:
        try:
            existing = Job.fetch(job_id, connection=connection)
            if existing.get_status(refresh=True) not in TERMINAL:
                return _rq_status(existing)
        except NoSuchJobError:
            pass
    job = Queue(queue, connection=connection).enqueue(name, *args, job_id=job_id, job_timeout=timeout, **kwargs)
    # Just queued: its status is known without asking Redis again (the webhook's hot path comes through here).
    return JobStatus(job.id, name, "queued", {}, enqueued_at=job.enqueued_at)


def job_status(job_id: str) -> JobStatus | None:
    """Return what is known of a job, or None when there is no such job."""
    url = current_app.config["REDIS_URL"]
    if not url:
        return in_process_runner(current_app._get_current_object()).status(job_id)
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        return _rq_status(Job.fetch(job_id, connection=redis_connection(url)))
    except NoSuchJobError:
        return None


def _rq_status(job: Any) -> JobStatus:
    status = job.get_status(refresh=True)
    status = getattr(status, "value", status)
    error = None
    if status == "failed":
        latest = job.latest_result()
        error = (latest.exc_string or "").strip().splitlines()[-1] if latest and latest.exc_string else "failed"
    return JobStatus(job.id, job.func_name, str(status), dict(job.get_meta(refresh=False) or {}),
                     job.return_value() if status == "finished" else None, error, job.enqueued_at, job.ended_at)


def in_process_runner(app: Flask) -> InProcessRunner:
    """Return the app's in-process runner, made on first use."""
    runner = app.extensions.get("backoffice_jobs")
    if runner is None:
        runner = app.extensions["backoffice_jobs"] = InProcessRunner(app)
    return runner


def report_progress(**meta: Any) -> None:
    """Record progress of the running job (RQ or in-process) for the page that polls it."""
    job = _current_in_process.get()
    if job is None:
        from rq import get_current_job

        job = get_current_job()
    if job is None:
        return  # called outside a job (CLI, tests): nobody is polling
    job.meta.update(meta)
    job.save_meta()

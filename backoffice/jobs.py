"""The only door to RQ: enqueue a task and read a job's status.

With REDIS_URL set, jobs go to RQ queues served by `worker.py`. Without it (the demo), jobs run
in-process on a small thread pool with the same interface, so progress polling behaves the same.

Redis is asked with short timeouts (REDIS_SOCKET_TIMEOUT, no retries) behind a circuit: after a failure the
process stops asking for REDIS_CIRCUIT_SECONDS and fails at once with `RedisUnavailable`, so a slow or frozen
Redis never holds a request. Nothing is lost meanwhile: the archive says what is pending, and the pending
sweeper queues it once Redis answers again.
"""
from __future__ import annotations

import functools
import importlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, current_app
from redis.commands.core import Script
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job

from backoffice.logs import log_job

QUEUES = ("high", "default", "low")
TERMINAL = {"finished", "failed", "stopped", "canceled"}
# The job.meta key naming the operator who started a job: only they, or an admin, may read its status.
OWNER_META = "owner"


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

    @property
    def owner(self) -> str | None:
        """The operator who started the job, when an operator did."""
        return self.meta.get(OWNER_META)


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
        self.queued_keys: dict[str, str] = {}  # enqueue_once key → the id of the job it queued
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


class RedisUnavailable(RedisConnectionError):
    """Redis failed a moment ago: not asked again until the circuit lets one caller try."""


class Circuit:
    """After a Redis failure, stop asking for `pause` seconds; then let a single caller try again.

    Closed, every call goes through. Open, every call fails at once. When the pause is over, the first caller
    probes while the others keep failing at once; its success closes the circuit, its failure opens it again.
    """

    def __init__(self, pause: float):
        self.pause = pause
        self.open_until = 0.0  # monotonic time; 0: closed
        self.lock = threading.Lock()

    def admit(self) -> bool:
        if not self.open_until:
            return True
        with self.lock:
            if not self.open_until:
                return True  # closed meanwhile by another caller's success
            now = time.monotonic()
            if now < self.open_until:
                return False
            # Pushed ahead before the probe, so that the callers behind it do not all wait out a timeout.
            self.open_until = now + self.pause
            return True

    def failed(self) -> None:
        with self.lock:
            self.open_until = time.monotonic() + self.pause

    def succeeded(self) -> None:
        if self.open_until:
            with self.lock:
                self.open_until = 0.0

    @property
    def is_open(self) -> bool:
        return bool(self.open_until)


_circuits: dict[str, Circuit] = {}
_circuits_lock = threading.Lock()


def circuit_for(url: str, pause: float) -> Circuit:
    """Return the process's circuit for a Redis URL."""
    circuit = _circuits.get(url)
    if circuit is None:
        with _circuits_lock:
            circuit = _circuits.setdefault(url, Circuit(pause))
    return circuit


@functools.lru_cache(maxsize=8)
def redis_connection(url: str, timeout: float | None = None):
    """Return the process's Redis client for a URL and socket timeout (one pool, reused by every request).

    With a timeout, connecting and every reply wait at most that long, and a failure is not retried: the
    caller (through the circuit) decides what a failure means. Without one, redis-py's defaults (workers).
    """
    from redis import Redis

    if timeout is None:
        return Redis.from_url(url)
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0),
                          health_check_interval=0)


@contextmanager
def redis_client(config: Any = None, timeout: float | None = None) -> Iterator[Any]:
    """Yield the app's Redis client through its circuit; raise RedisUnavailable at once while the circuit is open.
    `timeout` replaces REDIS_SOCKET_TIMEOUT for work off the request path, which may wait longer."""
    config = config if config is not None else current_app.config
    url = config["REDIS_URL"]
    circuit = circuit_for(url, config["REDIS_CIRCUIT_SECONDS"])
    if not circuit.admit():
        raise RedisUnavailable(f"Redis failed less than {circuit.pause:g} s ago; not asked again yet")
    try:
        yield redis_connection(url, config["REDIS_SOCKET_TIMEOUT"] if timeout is None else timeout)
    except (RedisConnectionError, RedisTimeoutError):
        circuit.failed()
        raise
    circuit.succeeded()


ONCE_PREFIX = "backoffice:queued:"
ONCE_TTL_SECONDS = 3600
CLAIMING = "claiming:"  # a marker's value while its job is being written, before it names the job
# Writing a job takes milliseconds. A claim is left behind when its caller timed out (a frozen Redis runs the
# commands it had buffered once it is thawed, long after the caller gave up): it must not block for long.
CLAIMING_TTL_MS = 2000

# A job a worker has started is live while its pulse key exists: our worker sets it before RQ marks the job started,
# refreshes it every PULSE_SECONDS while the job runs and deletes it when the job ends (workers/job_pulse.py). RQ's
# own sign of life, the worker's key, outlives a SIGKILLed SimpleWorker by the job's timeout + 60 s: a customer whose
# replay was started, then killed before it claimed its marker, waited eleven minutes for the sweeper to see it lost.
PULSE_PREFIX = "backoffice:pulse:"
PULSE_SECONDS = 1.0
PULSE_TTL_MS = 5000

# Whether a marker holds its key, decided in Redis in one round trip by every script below: while it is a claim
# (`claiming:<id>`, short-lived, so a caller that dies before writing its job blocks nobody for long), or while
# the job it names is live. A job is live when its hash says scheduled or deferred, queued and the job is still on
# its queue, or started with its pulse still beating. A worker killed before the job claimed the marker leaves a job
# that is gone, ended, started with no pulse, or still "queued" though the worker had taken it off the queue (RQ
# marks it started a moment later, and fails it only at a later worker's maintenance): none of these holds the key.
# ARGV (`_marker_args`): [1] a new job's id, [2] RQ's job prefix, [3] the pulse prefix, [4] CLAIMING,
# [5] CLAIMING_TTL_MS, [6] RQ's queue prefix.
HOLDS = """
local function live(job)
  local state = redis.call('HMGET', ARGV[2] .. job, 'status', 'origin')
  local status, origin = state[1], state[2]
  if status == 'scheduled' or status == 'deferred' then
    return true
  end
  if status == 'queued' then
    return origin ~= false and redis.call('LPOS', ARGV[6] .. origin, job, 'RANK', -1) ~= false
  end
  return status == 'started' and redis.call('EXISTS', ARGV[3] .. job) == 1
end
local function holds(marker)
  return string.sub(marker, 1, string.len(ARGV[4])) == ARGV[4] or live(marker)
end
local current = redis.call('GET', KEYS[1])
"""
# Take the key unless its marker holds it: {1, previous marker or false} when taken, {0, the marker} when not.
TAKE_MARKER = HOLDS + """
if current and holds(current) then
  return {0, current}
end
redis.call('SET', KEYS[1], ARGV[4] .. ARGV[1], 'PX', ARGV[5])
return {1, current or false}
"""
# The marker while it holds its key, else false.
HOLDING_MARKER = HOLDS + """
if current and holds(current) then
  return current
end
return false
"""
# Delete a marker that no longer holds its key; 1 when deleted.
CLEAR_STALE = HOLDS + """
if current and not holds(current) then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# Written in the same transaction as the job itself: the marker names the job unless the job has already
# claimed it (it cannot have: it is not on a queue before this transaction), or another caller took it.
NAME_JOB = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
  return 1
end
return 0
"""
# Sent by their digest (EVALSHA), loaded once per server: the webhook's common case is one small round trip.
# NAME_JOB goes inside the job's transaction as plain EVAL: an unknown digest there would fail inside EXEC.
_TAKE_MARKER = Script(None, TAKE_MARKER.encode())
_HOLDING_MARKER = Script(None, HOLDING_MARKER.encode())
_CLEAR_STALE = Script(None, CLEAR_STALE.encode())


def _marker_args(job_id: str = "") -> list[Any]:
    return [job_id, Job.redis_job_namespace_prefix, PULSE_PREFIX, CLAIMING, CLAIMING_TTL_MS,
            Queue.redis_queue_namespace_prefix]


def enqueue_once(key: str, task: Callable[..., Any] | str, *args: Any, queue: str = "default",
                 delay: float = 0, redis_timeout: float | None = None, **kwargs: Any) -> bool:
    """Queue a task unless a live job with this key is queued and not yet started; tell whether it queued one.

    A started job does not count: work that arrives while it runs needs another run. The task calls
    `claim_once(key)` as it starts. The key's marker names its job, so a marker whose job was lost never blocks
    the key for long: a deleted job's at once, a job whose worker was killed before it claimed the key once the
    job's pulse has lapsed (PULSE_TTL_MS).
    With `delay`, the job is queued that many seconds from now (RQ's scheduler, or a timer in-process).
    `redis_timeout`: as `redis_client`'s.
    """
    job_id = kwargs.pop("job_id", None) or uuid.uuid4().hex
    url = current_app.config["REDIS_URL"]
    if not url:
        runner = in_process_runner(current_app._get_current_object())
        with runner.lock:
            held = runner.queued_keys.get(key)
            if held is not None and _in_process_live(runner, held):
                return False
            runner.queued_keys[key] = job_id
        if delay > 0:
            runner.submit(task_name(task), args, kwargs, job_id, delay=delay)
        else:
            enqueue(task, *args, queue=queue, job_id=job_id, **kwargs)
        return True

    marker = ONCE_PREFIX + key
    with redis_client(timeout=redis_timeout) as connection:
        taken, _previous = _TAKE_MARKER(keys=[marker], client=connection, args=_marker_args(job_id))
        if not taken:
            return False
        with connection.pipeline() as pipe:
            if delay > 0:
                _enqueue_in(connection, delay, task, args, kwargs, queue, job_id, pipe)
            else:
                _enqueue_rq(connection, task, args, kwargs, queue, job_id, 600, pipe)
            pipe.eval(NAME_JOB, 1, marker, CLAIMING + job_id, job_id, ONCE_TTL_SECONDS)
            pipe.execute()
    return True


def _in_process_live(runner: InProcessRunner, job_id: str) -> bool:
    job = runner.jobs.get(job_id)
    return job is not None and job.status in ("queued", "started")


def marker_state(key: str) -> str | None:
    """Return the id of the live job queued under `key`, or None when there is none (no marker, or a stale one)."""
    url = current_app.config["REDIS_URL"]
    if not url:
        runner = in_process_runner(current_app._get_current_object())
        held = runner.queued_keys.get(key)
        return held if held is not None and _in_process_live(runner, held) else None
    with redis_client() as connection:
        value = _HOLDING_MARKER(keys=[ONCE_PREFIX + key], args=_marker_args(), client=connection)
        return value.decode() if value else None


def clear_stale_markers(prefix: str = "") -> int:
    """Delete the enqueue_once markers (under `prefix`) whose job is not live any more; return how many.

    The pending sweeper calls this: a stale marker never blocks anything (enqueue_once replaces it), but one
    left behind would make the queue look busier than it is.
    """
    url = current_app.config["REDIS_URL"]
    if not url:
        runner = in_process_runner(current_app._get_current_object())
        with runner.lock:
            stale = [key for key, held in runner.queued_keys.items()
                     if key.startswith(prefix) and not _in_process_live(runner, held)]
            for key in stale:
                del runner.queued_keys[key]
        return len(stale)
    cleared = 0
    with redis_client() as connection:
        for marker in connection.scan_iter(match=ONCE_PREFIX + prefix + "*", count=500):
            cleared += _CLEAR_STALE(keys=[marker], args=_marker_args(), client=connection)
    return cleared


def enqueue_in(delay: float, task: Callable[..., Any] | str, *args: Any, queue: str = "default", **kwargs: Any) -> None:
    """Queue a task `delay` seconds from now, without holding a worker meanwhile."""
    job_id = kwargs.pop("job_id", None) or uuid.uuid4().hex
    url = current_app.config["REDIS_URL"]
    if not url:
        in_process_runner(current_app._get_current_object()).submit(task_name(task), args, kwargs, job_id, delay=delay)
        return
    with redis_client() as connection:
        _enqueue_in(connection, delay, task, args, kwargs, queue, job_id)


def _enqueue_in(connection: Any, delay: float, task: Callable[..., Any] | str, args: tuple[Any, ...],
                kwargs: dict[str, Any], queue: str, job_id: str, pipeline: Any = None) -> None:
    Queue(queue, connection=connection).enqueue_in(timedelta(seconds=delay), task_name(task), *args, job_id=job_id,
                                                   pipeline=pipeline, **kwargs)


def claim_once(key: str) -> None:
    """Let the next `enqueue_once(key, …)` queue again: called by the task as it starts its work."""
    url = current_app.config["REDIS_URL"]
    if not url:
        runner = in_process_runner(current_app._get_current_object())
        with runner.lock:
            runner.queued_keys.pop(key, None)
    else:
        with redis_client() as connection:
            connection.delete(ONCE_PREFIX + key)


def enqueue(task: Callable[..., Any] | str, *args: Any, queue: str = "default", job_id: str | None = None,
            timeout: int = 600, owner: str | None = None, **kwargs: Any) -> JobStatus:
    """Queue a task (taking ids and plain values) and return its status; a live job with the same id is reused."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; use one of {', '.join(QUEUES)}")
    name = task_name(task)
    given_id = job_id is not None
    job_id = job_id or uuid.uuid4().hex
    url = current_app.config["REDIS_URL"]
    meta = {OWNER_META: owner} if owner is not None else {}
    if not url:
        runner = in_process_runner(current_app._get_current_object())
        status = runner.submit(name, args, kwargs, job_id)
        runner.jobs[status.id].meta.update(meta)
        status.meta.update(meta)
        return status

    with redis_client() as connection:
        if given_id:
            try:
                existing = Job.fetch(job_id, connection=connection)
                if existing.get_status(refresh=True) not in TERMINAL:
                    return _rq_status(existing)
            except NoSuchJobError:
                pass
        job = _enqueue_rq(connection, name, args, kwargs, queue, job_id, timeout, meta=meta)
    # Just queued: its status is known without asking Redis again (the webhook's hot path comes through here).
    return JobStatus(job.id, name, "queued", dict(meta), enqueued_at=job.enqueued_at)


def _enqueue_rq(connection: Any, task: Callable[..., Any] | str, args: tuple[Any, ...], kwargs: dict[str, Any],
                queue: str, job_id: str, timeout: int, pipeline: Any = None, meta: dict[str, Any] | None = None) -> Any:
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; use one of {', '.join(QUEUES)}")

    return Queue(queue, connection=connection).enqueue(task_name(task), *args, job_id=job_id, job_timeout=timeout,
                                                       pipeline=pipeline, meta=meta or None, **kwargs)


def job_status(job_id: str) -> JobStatus | None:
    """Return what is known of a job, or None when there is no such job."""
    url = current_app.config["REDIS_URL"]
    if not url:
        return in_process_runner(current_app._get_current_object()).status(job_id)

    with redis_client() as connection:
        try:
            return _rq_status(Job.fetch(job_id, connection=connection))
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

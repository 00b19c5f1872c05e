"""A running job's pulse: a short-lived Redis key its worker keeps alive while the job runs.

Whoever asks whether a started job still runs (backoffice/jobs.py: the queued-replay markers) reads the key; a
worker that was killed stops refreshing it, and within PULSE_TTL_MS its job counts as lost.
"""
from __future__ import annotations

import logging
import threading

from redis.exceptions import RedisError

from backoffice.jobs import PULSE_PREFIX, PULSE_SECONDS, PULSE_TTL_MS

log = logging.getLogger("backoffice.worker")


class JobPulse:
    """Set the current job's pulse key as it begins, refresh it from a thread while it runs, delete it at the end."""

    def __init__(self, connection, interval: float = PULSE_SECONDS, ttl_ms: int = PULSE_TTL_MS):
        self.connection = connection
        self.interval = interval
        self.ttl_ms = ttl_ms
        self.current: str | None = None
        # Held around each write, so a refresh cannot land after the job's end deleted its key.
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def begin(self, job_id: str) -> None:
        with self.lock:
            self.current = job_id
            self._write(job_id)
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="job-pulse", daemon=True)
            self.thread.start()

    def end(self, job_id: str) -> None:
        with self.lock:
            self.current = None
            try:
                self.connection.delete(PULSE_PREFIX + job_id)
            except RedisError:
                pass  # the key expires by itself; the job's status already says it ended

    def stop(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            with self.lock:
                if self.current is not None:
                    self._write(self.current)

    def _write(self, job_id: str) -> None:
        try:
            self.connection.set(PULSE_PREFIX + job_id, 1, px=self.ttl_ms)
        except RedisError as error:
            # Missing beats make the job look lost: at worst its customer is replayed twice, which replay allows.
            log.warning("job pulse not written: %s: %s", type(error).__name__, error)

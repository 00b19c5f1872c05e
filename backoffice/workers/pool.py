"""Several RQ workers under one `worker.py`, so that one machine's cores all take jobs (issue 21).

A worker runs its jobs in its own process, one at a time (RQ's SimpleWorker, backoffice/workers/rq_worker.py), so it
uses one core. `worker.py --processes N` starts N such workers, each `worker.py` with the same options in a process
of its own (its own app, connection pool, heartbeat row and Redis outage handling), and keeps them running:

- SIGTERM or SIGINT to this process is passed on once, as SIGTERM, to every worker: each finishes its job and stops
  (RQ's warm shutdown). The workers run in a session of their own, so a terminal's Ctrl-C reaches them only
  through this process, once, not twice (RQ's second signal would abandon the job);
- a worker that ends while the pool is not stopping is started again after a pause (never a tight loop); with
  `--burst` the pool ends once every worker has drained the queues, with the worst exit status.

Replays share the workers by customer: the webhook and the sweeper queue one job per customer, and each customer's
advisory lock keeps two workers from replaying it at once (DESIGN §2.2).
"""
from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("backoffice.worker")

WORKER_SCRIPT = Path(__file__).resolve().parents[2] / "worker.py"
RESTART_PAUSE_SECONDS = 1.0
STOP_WAIT_SECONDS = 600.0  # a warm shutdown waits for the running job; a replay's job takes well under a minute


def run_pool(processes: int, worker_argv: Sequence[str], *, burst: bool) -> int:
    """Run `processes` workers (`worker.py` with `worker_argv`) until they end (burst) or a signal; return the status."""
    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        if not stopping.is_set():
            log.info("worker pool stopping on signal %d: passing SIGTERM to %d worker(s)", signum, len(workers))
            stopping.set()
            for worker in workers:
                _terminate(worker)

    workers: list[subprocess.Popen] = []
    previous = {number: signal.signal(number, stop) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        workers.extend(_start(worker_argv) for _ in range(processes))
        statuses: dict[int, int] = {}
        while len(statuses) < len(workers):
            for index, worker in enumerate(workers):
                if index in statuses or worker.poll() is None:
                    continue
                if burst or stopping.is_set():
                    statuses[index] = worker.returncode
                    continue
                log.warning("worker %d (pid %d) ended with %d: starting it again", index + 1, worker.pid,
                            worker.returncode)
                stopping.wait(RESTART_PAUSE_SECONDS)
                if not stopping.is_set():
                    workers[index] = _start(worker_argv)
            stopping.wait(0.2)
        return max((abs(code) for code in statuses.values()), default=0)
    finally:
        for worker in workers:
            _terminate(worker)
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        for worker in workers:
            try:
                worker.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        for number, handler in previous.items():
            signal.signal(number, handler)


def _start(worker_argv: Sequence[str]) -> subprocess.Popen:
    # A session of its own: a terminal's signal reaches the worker only through the pool, once.
    return subprocess.Popen([sys.executable, str(WORKER_SCRIPT), *worker_argv], start_new_session=True)


def _terminate(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        try:
            worker.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass

"""The RQ worker (and, with --scheduler, the periodic-job scheduler) for Backoffice.

    python worker.py                 # serve the high, default and low queues
    python worker.py --burst         # drain the queues and exit (tests, one-off runs)
    python worker.py --scheduler     # enqueue the periodic jobs of backoffice/schedule.py
    python worker.py --processes 2   # two workers side by side, one per core (the Procfile's; pool.py)

Like wsgi.py, it takes its settings from the environment alone: DATABASE_URL, SECRET_KEY and REDIS_URL.

Both ride out a Redis outage: they retry with a capped backoff (one log line per attempt) instead of exiting, and
when Redis answers again they queue the catch-up jobs (a sweep of everything pending) at once. Each writes a
heartbeat row to PostgreSQL (backoffice/liveness.py) that the jobs page and /readyz show; the worker also queues
the catch-up when PostgreSQL comes back, so replays that failed meanwhile do not wait for the next sweep.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from backoffice.config import create_app_or_exit
from backoffice.jobs import QUEUES
from backoffice.schedule import TASK_MODULES
from backoffice.workers.pool import run_pool
from backoffice.workers.rq_worker import serve
from backoffice.workers.scheduler import schedule


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--burst", action="store_true", help="exit once the queues are empty")
    parser.add_argument("--scheduler", action="store_true", help="run the periodic-job scheduler instead of a worker")
    parser.add_argument("--queues", default=",".join(QUEUES), help="comma-separated queues, highest priority first")
    parser.add_argument("--processes", type=int, default=1, metavar="N",
                        help="run N workers side by side, each in a process of its own (a worker uses one core)")
    options = parser.parse_args(argv)
    if options.processes < 1:
        parser.error("--processes must be at least 1")
    if options.scheduler and options.processes > 1:
        parser.error("--processes is for workers: one scheduler is enough")

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
    if options.processes > 1:
        worker_argv = ["--queues", options.queues] + (["--burst"] if options.burst else [])
        return run_pool(options.processes, worker_argv, burst=options.burst)
    for module in TASK_MODULES:
        importlib.import_module(module)
    return serve(app, url, [name.strip() for name in options.queues.split(",") if name.strip()], options.burst)

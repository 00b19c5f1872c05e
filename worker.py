"""RQ worker (and, with --scheduler, the periodic-job scheduler) for Backoffice.

    python worker.py                 # serve the high, default and low queues
    python worker.py --burst         # drain the queues and exit (tests, one-off runs)
    python worker.py --scheduler     # enqueue the periodic jobs of backoffice/schedule.py

Like wsgi.py, it takes its settings from the environment alone: DATABASE_URL, SECRET_KEY and REDIS_URL.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time

from rq import Queue, SimpleWorker
from rq.cron import CronScheduler

from backoffice.config import create_app_or_exit
from backoffice.jobs import QUEUES, enqueue, redis_connection, resolve
from backoffice.logs import log_job
from backoffice.schedule import PERIODIC_JOBS, STARTUP_JOBS, TASK_MODULES


def build_worker_class(app):
    """Return a Worker that runs each job inside the app context and logs it as one JSON line.

    Jobs run in the worker process itself (RQ's SimpleWorker), not in a fork per job: a replay takes tens
    of milliseconds, a fork and fresh database connections as long again. The app, its connection pool and
    the task modules stay warm; a job's timeout still stops it.
    """
    from backoffice.extensions import db

    class AppWorker(SimpleWorker):
        def perform_job(self, job, queue, *args, **kwargs):
            started = time.perf_counter()
            with app.app_context():
                try:
                    return super().perform_job(job, queue, *args, **kwargs)
                finally:
                    db.session.remove()
                    status = job.get_status(refresh=False)
                    log_job(job.func_name, job.id, started, str(getattr(status, "value", status)))

    return AppWorker


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
    connection = redis_connection(url)
    if options.scheduler:
        scheduler = CronScheduler(connection=connection, name="backoffice-scheduler")
        for periodic in PERIODIC_JOBS:
            scheduler.register(resolve(periodic.task), periodic.queue, args=periodic.args,
                               interval=periodic.interval_seconds)
        scheduler.start()
        return 0
    for module in TASK_MODULES:
        importlib.import_module(module)
    with app.app_context():
        for startup in STARTUP_JOBS:
            enqueue(startup.task, *startup.args, queue=startup.queue, job_id="startup-" + startup.task.replace(".", "-"))
    queues = [Queue(name.strip(), connection=connection) for name in options.queues.split(",") if name.strip()]
    worker = build_worker_class(app)(queues, connection=connection)
    # The scheduler moves jobs queued for later (a replay waiting for its customer to settle) onto the queues.
    worker.work(burst=options.burst, with_scheduler=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

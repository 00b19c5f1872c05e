"""Jobs: in-process without Redis, and through RQ with a real worker process (burst mode) with Redis."""
import os
import subprocess
import sys
import time

import pytest
from redis import Redis
from sqlalchemy import select

from backoffice.billing.models import SyncState
from backoffice.extensions import db
from backoffice.jobs import enqueue, job_status
from tests.conftest import ROOT_DIR, run_burst_worker


def wait_until_ended(job_id, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = job_status(job_id)
        if status and status.ended:
            return status
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not end")


def test_in_process_job_reports_progress_and_result(app, settings):
    settings(IN_PROCESS_JOBS="threads")
    with app.app_context():
        queued = enqueue("tests.job_tasks.count_to", 3, job_id="count-in-process")
        assert queued.id == "count-in-process"
        status = wait_until_ended("count-in-process")
    assert (status.status, status.result, status.meta) == ("finished", 3, {"step": 3, "total": 3})


def test_in_process_job_failure_is_reported(app, settings):
    settings(IN_PROCESS_JOBS="threads")
    with app.app_context():
        enqueue("tests.job_tasks.explode", "boom", job_id="explode-in-process")
        status = wait_until_ended("explode-in-process")
    assert status.status == "failed"
    assert status.error == "RuntimeError: boom"


def test_deferred_jobs_wait_for_a_burst_and_enqueue_once_keeps_one_queued(app, db_connection):
    from backoffice.jobs import claim_once, enqueue_once, in_process_runner

    with app.app_context():
        assert enqueue_once("count", "tests.job_tasks.count_to", 2, job_id="once-1")
        assert not enqueue_once("count", "tests.job_tasks.count_to", 2, job_id="once-2")  # one queued at a time
        assert job_status("once-1").status == "queued"
        assert in_process_runner(app).run_deferred() == 1
        assert job_status("once-1").result == 2
        claim_once("count")  # as the task does when it starts
        assert enqueue_once("count", "tests.job_tasks.count_to", 1, job_id="once-3")
        assert in_process_runner(app).run_deferred() == 1


def test_unknown_queue_is_refused(app):
    with app.app_context(), pytest.raises(ValueError, match="unknown queue"):
        enqueue("tests.job_tasks.count_to", 1, queue="urgent")


def test_rq_worker_runs_jobs_with_progress_and_logs_them(app, database_url, redis_url, settings):
    settings(REDIS_URL=redis_url)
    with app.app_context():
        first = enqueue("tests.job_tasks.count_to", 4, job_id="count-rq")
        duplicate = enqueue("tests.job_tasks.count_to", 4, job_id="count-rq")
        enqueue("backoffice.housekeeping.record_heartbeat", "test-worker", queue="low")
        enqueue("tests.job_tasks.explode", "kaboom", job_id="explode-rq", queue="high")
        assert first.status == "queued" and duplicate.id == first.id
        assert Redis.from_url(redis_url).llen("rq:queue:default") == 1  # deduplicated by job id

        worker = run_burst_worker(database_url.replace("postgresql+psycopg://", "postgresql://"), redis_url)
        assert worker.returncode == 0, worker.stderr

        done = job_status("count-rq")
        failed = job_status("explode-rq")
        assert (done.status, done.result, done.meta) == ("finished", 4, {"step": 4, "total": 4}), worker.stderr[-3000:]
        assert failed.status == "failed" and "kaboom" in failed.error
        heartbeat = db.session.scalar(select(SyncState).where(SyncState.key == "heartbeat:test-worker"))
        assert heartbeat is not None and "at" in heartbeat.value
        db.session.rollback()
    assert '"job": "tests.job_tasks.count_to"' in worker.stderr and '"duration_ms"' in worker.stderr


def test_worker_without_redis_says_so(database_url):
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": "", "SECRET_KEY": "test"}
    result = subprocess.run([sys.executable, "worker.py", "--burst"], cwd=ROOT_DIR, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "REDIS_URL is not set" in result.stderr

"""`replay --all` over two processes (issue 21): the same books as one process, and a shard's failure never lost.

A few thousand demo events are archived once, pending, as the webhook leaves them. Clones of that archive are
replayed by one process and by two (customers dealt by a hash of their id, each shard a process of its own); every
table the replay writes must have the same fingerprint. A shard that raises fails the command with its error; one
killed mid-replay fails the replay, and a rerun then completes it to the same books.
"""
from __future__ import annotations

import multiprocessing
import os
import signal

import pytest
import sqlalchemy as sa
from redis import Redis
from rq import Queue
from rq.job import Job
from rq.registry import FinishedJobRegistry

from backoffice import create_app
from backoffice.billing.replay.shards import ReplayShardFailed, shard_of, split
from backoffice.billing.replay.tasks import replay_all, replay_platform_events
from backoffice.database_roles import RUNTIME_GROUP
from backoffice.extensions import db
from benchmarks.bench_replay import fingerprint, generate, load_archive, replay_through_workers
from tests import pg
from tests.conftest import BASE_CONFIG, _migrate

TENANTS, MONTHS, SEED = 80, 12, 7


@pytest.fixture(scope="module")
def archive(pg_server):
    """The name of a database holding the generated archive, every event pending."""
    name = pg.create_run_database(pg_server, pg.ensure_template(pg_server, _migrate), "parallel_archive")
    app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": pg.app_url(pg_server, name)})
    events, tenant_ids = generate(TENANTS, MONTHS, SEED)
    with app.app_context():
        count = load_archive(events, tenant_ids, copies=1)
        db.session.remove()
        db.engine.dispose()
    assert count > 1000
    yield name
    pg.drop_database(pg_server, name)


@pytest.fixture
def clone(pg_server, archive):
    """Return a function making an app on a fresh clone of the archive; the clones are dropped after the test."""
    made = []

    def cloned(label):
        name = pg.create_run_database(pg_server, archive, label)
        made.append((name, create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": pg.app_url(pg_server, name)})))
        return made[-1]
    yield cloned
    for name, app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
        pg.drop_database(pg_server, name)


@pytest.fixture(scope="module")
def one_process(pg_server, archive):
    """The totals and the fingerprint of the archive replayed in one process."""
    name = pg.create_run_database(pg_server, archive, "parallel_one")
    app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": pg.app_url(pg_server, name)})
    try:
        with app.app_context():
            totals = replay_all(processes=1)
            prints = fingerprint()
            db.session.remove()
            db.engine.dispose()
    finally:
        pg.drop_database(pg_server, name)
    assert totals["processes"] == 1 and totals["failed"] == 0 and totals["appended"] > 0
    return totals, prints


def test_customers_are_dealt_by_a_stable_hash_of_their_id():
    customers = [f"cus_{n:04d}" for n in range(1000)]
    shards = split(customers, 2)
    assert sorted(shards[0] + shards[1]) == customers
    assert all(shard_of(customer, 2) == index for index, shard in enumerate(shards) for customer in shard)
    assert 400 < len(shards[0]) < 600  # dealt evenly enough
    # CRC-32 of the id (3896216368 for cus_0001), the same in every process, run and machine; not the salted hash().
    assert [shard_of("cus_0001", shards) for shards in (2, 3, 5)] == [0, 1, 3]


def test_two_processes_write_the_same_books_as_one(clone, one_process):
    single_totals, single = one_process
    _, app = clone("parallel_two")
    seen = []
    with app.app_context():
        totals = replay_all(processes=2, progress=lambda done, total: seen.append((done, total)))
        prints = fingerprint()
    assert totals["processes"] == 2
    assert {**totals, "processes": 1} == single_totals
    assert prints == single
    customers = totals["customers"]
    assert seen[-1] == (customers, customers)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen) and len(seen) >= 2
    verified = app.test_cli_runner().invoke(args=["billing", "verify"])
    assert verified.output.strip().splitlines()[-1] == "0 ledger difference(s), 0 payment difference(s)"


def test_a_shard_that_raises_fails_the_command_with_its_error(pg_server, clone):
    name, app = clone("parallel_raises")
    with app.app_context():
        replay_platform_events()  # the catalog, as `replay --all` settles it before any shard starts
        db.session.remove()
    # The shards' role may no longer read the catalog each of them loads before its first customer.
    owner = sa.create_engine(pg.sqlalchemy_url(pg.with_database(pg_server, name)), poolclass=sa.pool.NullPool)
    with owner.begin() as connection:
        connection.execute(sa.text(f"REVOKE SELECT ON plan_prices FROM {RUNTIME_GROUP}"))
    owner.dispose()

    result = app.test_cli_runner().invoke(args=["billing", "replay", "--all", "--processes", "2"])

    assert result.exit_code == 1, result.output
    assert "Error: replay shard " in result.output
    assert "permission denied for table plan_prices" in result.output
    with app.app_context():
        assert db.session.scalar(sa.text("SELECT count(*) FROM billing_events")) == 0


def test_a_shard_killed_mid_replay_fails_the_replay_and_a_rerun_completes_it(clone, one_process):
    _, single = one_process
    _, app = clone("parallel_killed")
    killed = []

    def kill_a_shard(done, total):
        if not killed:
            shard = multiprocessing.active_children()[0]
            os.kill(shard.pid, signal.SIGKILL)
            killed.append(shard.name)

    with app.app_context():
        with pytest.raises(ReplayShardFailed, match=r"killed by signal 9\) before it finished"):
            replay_all(processes=2, progress=kill_a_shard)
        assert killed
        totals = replay_all(processes=2)
        assert totals["failed"] == 0
        assert fingerprint() == single


def test_two_workers_under_one_worker_py_share_the_replays(clone, one_process, redis_url):
    """`worker.py --processes 2` (the Procfile's worker): two RQ workers drain the per-customer replay jobs."""
    _, single = one_process
    _, app = clone("parallel_workers")
    app.config["REDIS_URL"] = redis_url
    redis = Redis.from_url(redis_url)
    with app.app_context():
        replay_platform_events()  # the catalog first, as `replay --all` settles it, so both runs price alike
        db.session.remove()
    run = replay_through_workers(app, str(app.config["SQLALCHEMY_DATABASE_URI"]), redis_url,
                                 worker_args=["--processes", "2"])
    assert run.starts >= 1
    finished = FinishedJobRegistry(queue=Queue("default", connection=redis)).get_job_ids()
    workers = {job.worker_name for job in Job.fetch_many(finished, connection=redis) if job is not None}
    assert len(workers) == 2, workers
    with app.app_context():
        assert fingerprint() == single

"""A replay whose worker is SIGKILLed again and again ends exactly as a clean one (issue 18).

A few thousand demo events are archived once, pending, as the webhook leaves them. Two clones of that archive are
replayed the production way: one replay per customer on a real Redis queue, `worker.py --burst` as a subprocess.
One clone's workers run undisturbed; the other's are killed with SIGKILL mid-replay several times and restarted,
and the pending sweeper re-queues what a kill lost. Both books must verify clean, and every table the replay
writes must have the same fingerprint. benchmarks/bench_replay.py --kill-every runs the same function at scale.
"""
from __future__ import annotations

import pytest
from redis import Redis

from backoffice import create_app
from backoffice.billing.replay.tasks import replay_platform_events
from backoffice.extensions import db
from benchmarks.bench_replay import fingerprint, generate, load_archive, replay_through_workers
from tests import pg
from tests.conftest import BASE_CONFIG, _migrate

TENANTS, MONTHS, SEED = 100, 14, 5
KILLS = 4
KILL_EVERY = 0.15  # seconds of replaying before each kill, give or take a third


@pytest.fixture(scope="module")
def archive(pg_server):
    """The name of a database holding the generated archive, pending, its catalog events settled (so that both
    runs know every price before their first customer, as `replay --all` does)."""
    name = pg.create_run_database(pg_server, pg.ensure_template(pg_server, _migrate), "sigkill_archive")
    app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": pg.app_url(pg_server, name)})
    events, tenant_ids = generate(TENANTS, MONTHS, SEED)
    with app.app_context():
        count = load_archive(events, tenant_ids, copies=1)
        replay_platform_events()
        db.session.remove()
        db.engine.dispose()
    assert count > 2000
    yield name
    pg.drop_database(pg_server, name)


def replayed(pg_server, archive, redis_url, label, **kills):
    """Replay a clone of the archive through workers; return (the run, `flask billing verify`, the fingerprint)."""
    name = pg.create_run_database(pg_server, archive, label)
    url = pg.app_url(pg_server, name)
    app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": url, "REDIS_URL": redis_url})
    Redis.from_url(redis_url).flushdb()
    try:
        run = replay_through_workers(app, url, redis_url, **kills)
        verified = app.test_cli_runner().invoke(args=["billing", "verify"])
        with app.app_context():
            prints = fingerprint()
            db.session.remove()
            db.engine.dispose()
    finally:
        pg.drop_database(pg_server, name)
    return run, verified, prints


# Alone this takes 16–40 s. A kill between RQ starting a job and the task claiming its customer's marker costs the
# customer at most the job pulse's TTL (tests/jobs/test_job_pulse.py) before the sweeper queues it again.
@pytest.mark.timeout(240)
def test_a_replay_killed_again_and_again_ends_as_a_clean_one(pg_server, archive, redis_url):
    clean_run, clean_verify, clean = replayed(pg_server, archive, redis_url, "sigkill_clean")
    killed_run, killed_verify, killed = replayed(pg_server, archive, redis_url, "sigkill_killed",
                                                 kill_every=KILL_EVERY, kills=KILLS, seed=SEED)

    assert clean_run.kills == 0
    assert killed_run.kills == KILLS, killed_run  # each landed while events were still pending
    for verified in (clean_verify, killed_verify):
        assert verified.exit_code == 0, verified.output[-3000:]
        assert verified.output.strip().splitlines()[-1] == "0 ledger difference(s), 0 payment difference(s)"
    assert killed == clean
    assert int(clean["archive"].split(":")[0]) > 2000
    assert int(clean["ledger"].split(":")[0]) > 0

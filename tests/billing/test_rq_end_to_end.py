"""The production path with nothing in-process: sandbox → signed webhook → archive (committed) → RQ queue in
Redis → `worker.py --burst` in another process → ledger."""
import uuid

import pytest

from backoffice.billing.replay.tasks import refresh_catalog, sweep_pending
from backoffice.demo.scenarios import SCENARIOS
from backoffice.extensions import db
from tests import pg
from tests.billing.harness import LedgerHarness
from tests.billing.test_scenario_ledgers import EXPECTED
from tests.conftest import _migrate, run_burst_worker


@pytest.fixture
def committed_database(pg_server):
    """A database of this test's own: the worker is another process, so nothing can be rolled back."""
    name = pg.create_run_database(pg_server, pg.ensure_template(pg_server, _migrate), f"rq{uuid.uuid4().hex[:8]}")
    yield pg.app_url(pg_server, name)
    pg.drop_database(pg_server, name)


@pytest.mark.parametrize("api_version", [None, "2020-03-02"], ids=["basil", "2020-03-02"])
def test_every_scenario_reaches_the_ledger_through_a_real_rq_worker(make_app, committed_database, redis_url,
                                                                    api_version):
    """Each lifecycle in a Stripe account of its own, all through the webhook, then one burst worker replays all."""
    app = make_app(REDIS_URL=redis_url, SQLALCHEMY_DATABASE_URI=committed_database)
    tenants, harnesses = {}, []
    try:
        for seed, name in enumerate(sorted(SCENARIOS), start=100):
            harness = LedgerHarness(app, app.test_client(), lambda **values: app.config.update(values),
                                    api_version=api_version, seed=seed)
            harnesses.append(harness)
            tenants[name] = harness.tenant(f"ten_rq_{seed}")
            SCENARIOS[name](harness.demo, tenants[name])
            harness.deliver()  # signed with this account's secret, archived, a replay queued in Redis
            with app.app_context():  # the prices of this account (the worker has no Stripe to ask)
                assert refresh_catalog()["prices"] == 4
        with app.app_context():
            # The webhook asks for replays from a thread of its own, which may not have asked yet, or found Redis
            # slow on a loaded machine: the pending sweeper (the scheduler's minute sweep) is what guarantees them.
            sweep_pending(older_than=0)
        worker = run_burst_worker(committed_database.replace("postgresql+psycopg://", "postgresql://"), redis_url,
                                  SETTLE_SECONDS="0")
        assert worker.returncode == 0, worker.stderr[-3000:]
        for name, tenant in tenants.items():
            assert harnesses[0].ledger(tenant) == EXPECTED[name], (name, worker.stderr[-3000:])
        assert harnesses[0].statuses().get("pending", 0) == 0
    finally:
        for harness in harnesses:
            harness.close()
        with app.app_context():
            db.engine.dispose()

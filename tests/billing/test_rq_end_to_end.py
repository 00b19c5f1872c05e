"""The production path with nothing in-process: sandbox → signed webhook → archive (committed) → RQ queue in
Redis → `worker.py --burst` in another process → ledger."""
import uuid

import pytest

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
    yield pg.sqlalchemy_url(pg.with_database(pg_server, name))
    pg.drop_database(pg_server, name)


def test_scenarios_reach_the_ledger_through_a_real_rq_worker(make_app, committed_database, redis_url):
    database_url = committed_database
    app = make_app(REDIS_URL=redis_url, SQLALCHEMY_DATABASE_URI=database_url)
    harness = LedgerHarness(app, app.test_client(), lambda **values: app.config.update(values))
    try:
        tenants = {name: harness.tenant(f"ten_rq_{name}_{uuid.uuid4().hex[:8]}")
                   for name in ("immediate_cancel", "payment_failed_then_recovered")}
        for name, tenant in tenants.items():
            SCENARIOS[name](harness.demo, tenant)
        harness.deliver()
        worker = run_burst_worker(database_url.replace("postgresql+psycopg://", "postgresql://"), redis_url,
                                  STRIPE_SECRET_KEY=harness.sandbox.settings.secret_key,
                                  STRIPE_API_BASE=harness.server.url, SETTLE_SECONDS="0")
        assert worker.returncode == 0, worker.stderr[-3000:]
        for name, tenant in tenants.items():
            assert harness.ledger(tenant) == EXPECTED[name], worker.stderr[-3000:]
    finally:
        harness.close()
        with app.app_context():
            db.engine.dispose()

"""`flask billing prove` at CI size: 200 random lifecycles through the sandbox, the real webhook (20 % duplicated,
10 % out of order, 5 % dropped), the events.list walk and replay_all, then every check against Stripe.

It runs on a database of its own (the prove needs an empty one and commits, with the webhook served on a
thread), cloned from the migrated template like the run database.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from backoffice import create_app
from backoffice.accounts.models import Tenant
from backoffice.extensions import db
from tests import pg
from tests.conftest import BASE_CONFIG, _migrate

LIFECYCLES = 200


@pytest.fixture
def empty_app(pg_server):
    template = pg.ensure_template(pg_server, _migrate)
    name = pg.create_run_database(pg_server, template, "prove")
    application = create_app({**BASE_CONFIG, "PLATFORM_CURRENCY": "EUR",
                              "SQLALCHEMY_DATABASE_URI": pg.app_url(pg_server, name)})
    yield application
    with application.app_context():
        db.session.remove()
        db.engine.dispose()
    pg.drop_database(pg_server, name)


@pytest.mark.timeout(900)
def test_prove_at_ci_size_passes_every_check(empty_app):
    result = empty_app.test_cli_runner().invoke(args=["billing", "prove", "--lifecycles", str(LIFECYCLES),
                                                      "--seed", "7"])
    output = result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), (output, result.exc_info)
    summary = output[output.find(f"lifecycles {LIFECYCLES}"):]  # the figures and every check, without the progress
    assert f"lifecycles {LIFECYCLES} (seed 7" in output, output
    for check in ("every Stripe event archived", "verify: ledger", "no Unclassified rows",
                  "forward MRR = Stripe's next monthly bill", "Σ forward MRR = Σ latest committed",
                  "revenue tile = chart end"):
        assert check in summary, summary
    # Any FAIL line fails the command (exit 1) and this test, with the figures and counter-examples shown.
    assert "FAIL" not in summary and result.exit_code == 0, summary


def test_prove_refuses_a_database_that_holds_tenants(empty_app):
    with empty_app.app_context():
        db.session.add(Tenant(id="ten_existing", name="Existing", country="DK", plan="basis"))
        db.session.commit()
        assert db.session.scalar(select(Tenant.id)) == "ten_existing"
    result = empty_app.test_cli_runner().invoke(args=["billing", "prove", "--lifecycles", "1"])
    assert result.exit_code != 0 and "the prove runs on an empty one" in result.output, result.output

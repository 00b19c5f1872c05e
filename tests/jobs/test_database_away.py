"""A replay or a sweep that finds PostgreSQL away (nothing listens on its port) is retried soon, with a short
growing pause, instead of failing and waiting for the pending sweeper's next minute (issue 18, catching up)."""
import pytest

from backoffice.billing.replay.tasks import database_unavailable, replay_customer, retry_delay, sweep_pending
from backoffice.jobs import in_process_runner
from tests.throwaway_servers import free_port


@pytest.fixture
def unreachable_app(make_app):
    app = make_app(SQLALCHEMY_DATABASE_URI=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/gone",
                   IN_PROCESS_JOBS="deferred", SETTLE_SECONDS=0)
    yield app
    in_process_runner(app).forget()


def test_a_replay_that_finds_the_database_away_queues_itself_again_soon(unreachable_app):
    runner = in_process_runner(unreachable_app)
    with unreachable_app.app_context():
        result = replay_customer("cus_away")
        assert result == {"customer": "cus_away", "database_unavailable": True, "retry_in": 1.0}
        assert [entry[1].name for entry in runner.deferred] == ["backoffice.billing.replay.tasks.replay_customer"]
        assert runner.deferred[0][2] == ("cus_away", 1)  # its next attempt, after retry_delay(1)
        assert replay_customer("cus_away", 3)["retry_in"] == 8.0


def test_a_sweep_that_finds_the_database_away_queues_itself_again_soon(unreachable_app):
    runner = in_process_runner(unreachable_app)
    with unreachable_app.app_context():
        assert sweep_pending(older_than=0) == {"queued": 0, "database_unavailable": True, "retry_in": 1.0}
    assert [entry[1].name for entry in runner.deferred] == ["backoffice.billing.replay.tasks.sweep_pending"]


def test_the_retry_pause_grows_and_is_capped():
    assert [retry_delay(attempt) for attempt in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_only_an_unreachable_database_counts_as_away():
    from sqlalchemy.exc import IntegrityError, OperationalError

    assert database_unavailable(OperationalError("SELECT 1", {}, Exception("connection refused")))
    assert not database_unavailable(IntegrityError("INSERT", {}, Exception("duplicate key")))
    assert not database_unavailable(ValueError("bad data"))

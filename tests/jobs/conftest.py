"""Fixtures of the Redis-outage tests: a throwaway redis-server, and a committed database for worker processes."""
import uuid

import pytest

from tests import pg
from tests.conftest import _migrate
from tests.throwaway_servers import ThrowawayRedis


@pytest.fixture
def redis_server():
    server = ThrowawayRedis().start()
    yield server
    server.stop()


@pytest.fixture
def committed_database(pg_server):
    """A database of this test's own: a worker is another process, so nothing can be rolled back."""
    name = pg.create_run_database(pg_server, pg.ensure_template(pg_server, _migrate), f"jobs{uuid.uuid4().hex[:8]}")
    yield pg.sqlalchemy_url(pg.with_database(pg_server, name))
    pg.drop_database(pg_server, name)

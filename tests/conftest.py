"""Shared fixtures: the app on a fresh per-run PostgreSQL database, a rolled-back transaction per test."""
from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
from redis import Redis

from backoffice import create_app
from backoffice.extensions import db
from backoffice.operators.identity import encode_principal
from tests import pg

ROOT_DIR = Path(__file__).resolve().parent.parent
ADMINS_GROUP = "group-backoffice-admins"
REDIS_SERVER = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379")

BASE_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key",
    "REDIS_URL": None,
    "PUBLIC_SUBSCRIPTION_ENABLED": True,
    "BACKOFFICE_ADMINS_GROUP_ID": ADMINS_GROUP,
    "TRUST_PROXY_HEADERS": True,
    "BACKOFFICE_DEV_LOGIN": False,
    "SETTLE_SECONDS": 0,
    # Jobs without Redis wait until a test drains them (`run_deferred`), as a burst worker would.
    "IN_PROCESS_JOBS": "deferred",
    "LOG_LEVEL": "WARNING",
    # The test client and the e2e server speak plain http.
    "SESSION_COOKIE_SECURE": False,
}


def _migrate(url: str) -> None:
    """Migrate the database at `url` as the owner, as the release step does with MIGRATION_DATABASE_URL."""
    from flask_migrate import upgrade

    owner = pg.sqlalchemy_url(url)
    app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": owner, "MIGRATION_DATABASE_URI": owner})
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def pg_server() -> str:
    return pg.server_url()


@pytest.fixture(scope="session")
def run_database(pg_server: str):
    """Yield the name of this test process's own database, cloned from the migrated template."""
    template = pg.ensure_template(pg_server, _migrate)
    label = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = pg.create_run_database(pg_server, template, label)
    yield name
    pg.drop_database(pg_server, name)


@pytest.fixture(scope="session")
def database_url(pg_server: str, run_database: str) -> str:
    """The run database's URL as the runtime role, which owns nothing: the app under test is held to what
    production's is (it cannot switch a trigger off)."""
    return pg.app_url(pg_server, run_database)


@pytest.fixture
def owner_connection(pg_server: str, run_database: str):
    """A connection to the run database as its owner, in a transaction rolled back after the test: for what
    only an owner may do (DDL, the triggers themselves)."""
    import sqlalchemy as sa

    engine = sa.create_engine(pg.sqlalchemy_url(pg.with_database(pg_server, run_database)),
                              poolclass=sa.pool.NullPool)
    with engine.connect() as connection, connection.begin() as transaction:
        yield connection
        transaction.rollback()
    engine.dispose()


@pytest.fixture(scope="session")
def make_app(database_url: str, tmp_path_factory):
    """Return a factory of apps on the run database, with settings overridden per call; their pools close at the end."""
    made = []
    # Exports a test writes go to the run's own folder, never into the checkout's instance/.
    blobs = str(tmp_path_factory.mktemp("blobs"))

    def factory(**overrides):
        made.append(create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, "BLOB_DIR": blobs,
                                **overrides}))
        return made[-1]
    yield factory
    for application in made:
        with application.app_context():
            db.engine.dispose()


@pytest.fixture(scope="session")
def app(make_app):
    application = make_app()
    with application.app_context():
        db.session.remove()
        # Savepoints let code under test commit while the test's outer transaction is rolled back.
        db.session.configure(join_transaction_mode="create_savepoint")
    yield application
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def db_connection(app):
    """Route the app's database work to one connection inside a transaction rolled back after the test.

    No app context stays pushed, so each test-client request gets its own (and its own `g`), as in production.
    """
    with app.app_context():
        engines = db.engines
        engine = engines[None]
        connection = engine.connect()
    transaction = connection.begin()
    engines[None] = connection
    try:
        yield connection
    finally:
        with app.app_context():
            db.session.remove()
        engines[None] = engine
        # Jobs the test queued but never ran belong to its rolled-back data.
        runner = app.extensions.get("backoffice_jobs")
        if runner is not None:
            runner.forget()
        transaction.rollback()
        connection.close()


@pytest.fixture
def db_session(app, db_connection):
    """Yield db.session, inside an app context, on the test's rolled-back connection."""
    with app.app_context():
        yield db.session
        db.session.remove()


@pytest.fixture
def data(app, db_connection):
    """A context manager that yields a session for arranging rows and commits them (into the test's rolled-back
    connection) at its end. The app context closes before requests run, so each request gets its own, and its
    own signed-in operator, as in production."""
    @contextmanager
    def arranged():
        with app.app_context():
            yield db.session
            db.session.commit()
            db.session.remove()
    return arranged


@pytest.fixture
def client(app, db_connection):
    return app.test_client()


def proxy_headers(name: str = "operator@example.com", groups: tuple[str, ...] = (), display_name: str | None = None,
                  principal_id: str | None = None) -> dict[str, str]:
    """Return the headers an Easy-Auth-style proxy sends for an operator."""
    claims = [("groups", group) for group in groups]
    if display_name:
        claims.append(("name", display_name))
    return {
        "X-MS-CLIENT-PRINCIPAL-NAME": name,
        "X-MS-CLIENT-PRINCIPAL-ID": principal_id or f"oid-{name}",
        "X-MS-CLIENT-PRINCIPAL": encode_principal(claims),
    }


@pytest.fixture
def operator_headers() -> dict[str, str]:
    return proxy_headers("operator@example.com", display_name="Olga Operator")


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return proxy_headers("admin@example.com", groups=(ADMINS_GROUP,), display_name="Ada Admin")


@pytest.fixture
def settings(app, monkeypatch):
    """Return a function that overrides app settings for the rest of the test."""
    def override(**values):
        for key, value in values.items():
            monkeypatch.setitem(app.config, key, value)
    return override


@pytest.fixture
def redis_url():
    """A Redis database of this test process's own, emptied before and after."""
    # A second checkout testing beside this one picks other databases with TEST_REDIS_FIRST_DB.
    first = int(os.environ.get("TEST_REDIS_FIRST_DB", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
    index = 1 + (first - 1 + worker) % 15
    url = f"{REDIS_SERVER}/{index}"
    connection = Redis.from_url(url)
    connection.flushdb()
    yield url
    connection.flushdb()


def run_burst_worker(database_url, redis_url, **environment):
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url, "LOG_FORMAT": "json",
           "SECRET_KEY": "test", **environment}
    return subprocess.run([sys.executable, "worker.py", "--burst"], cwd=ROOT_DIR, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def harness_factory(app, client, settings):
    """Make Stripe sandboxes wired to the real webhook (tests/billing/harness.py), closed after the test."""
    from tests.billing.harness import LedgerHarness

    made = []

    def make(**options):
        made.append(LedgerHarness(app, client, settings, **options))
        return made[-1]

    yield make
    for harness in made:
        harness.close()


@pytest.fixture
def harness(harness_factory):
    return harness_factory()

"""PostgreSQL out of reach: every page and partial answers 503 and says so, and the first request after it
returns succeeds. The database is a throwaway server of the test's own; the shared one is never stopped."""
from __future__ import annotations

import re

import psycopg
import pytest
from flask_migrate import upgrade

from backoffice import create_app
from backoffice.extensions import db
from tests.conftest import BASE_CONFIG, proxy_headers
from tests.throwaway_servers import ThrowawayPostgres

PAGE = {"Accept": "text/html,application/xhtml+xml"}
PARTIAL = {"HX-Request": "true", "Accept": "*/*"}
API = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def server():
    """A PostgreSQL of this module's own with the schema migrated."""
    postgres = ThrowawayPostgres()
    try:
        postgres.start()
        url = postgres.create_database("backoffice")
        migrating = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": url})
        with migrating.app_context():
            upgrade()
            db.engine.dispose()
        yield postgres
    finally:
        postgres.destroy()


@pytest.fixture
def own_app(server):
    # Forms without their token are refused before anything reaches the database; this test is about the database.
    application = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": server.url("backoffice"),
                              "WTF_CSRF_ENABLED": False})
    yield application
    with application.app_context():
        db.engine.dispose()


def assert_database_503(response, *, json_body: bool) -> None:
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "10"
    if json_body:
        assert response.is_json
        assert response.get_json() == {"error": "The database cannot be reached. Try again shortly.", "status": 503}
    else:
        assert response.mimetype == "text/html"
        page = response.get_data(as_text=True)
        assert "The database cannot be reached" in page
        assert "Traceback" not in page and "OperationalError" not in page


def test_the_engine_has_the_stated_pool_settings(own_app):
    with own_app.app_context():
        engine = db.engine
        assert engine.pool._pre_ping is True
        assert engine.pool._timeout == 5
        assert engine.pool._recycle == 1800
    options = own_app.config["SQLALCHEMY_ENGINE_OPTIONS"]
    assert options["connect_args"]["connect_timeout"] == 3


def test_pages_partials_and_json_answer_503_while_postgres_is_down_then_recover(own_app, server):
    client = own_app.test_client()
    operator = proxy_headers("outage@example.com", display_name="Otto Outage")
    # Served once, so the pool holds connections the outage will cut.
    assert client.get("/accounts", headers={**operator, **PAGE}).status_code == 200
    assert client.get("/audit", headers={**operator, **PARTIAL}).status_code == 200

    server.stop()
    try:
        page = client.get("/accounts?q=acme", headers={**operator, **PAGE})
        assert_database_503(page, json_body=False)
        html = page.get_data(as_text=True)
        # Retries by itself without any script, so a CSP that forbids inline script cannot stop it.
        assert re.search(r'<meta http-equiv="refresh" content="10">', html)
        assert 'href="/accounts?q=acme"' in html
        assert_database_503(client.get("/accounts", headers={**operator, **PARTIAL}), json_body=True)
        assert_database_503(client.get("/audit", headers={**operator, **API}), json_body=True)
        assert_database_503(client.get("/", headers={**operator, **PAGE}), json_body=False)
        assert_database_503(client.get("/dashboard/cards/mrr-movements", headers={**operator, **PARTIAL}),
                            json_body=True)
        # A form is not sent again behind the operator's back: the page says so and does not refresh.
        form = client.post("/preferences/kiosk", data={"next": "/accounts"}, headers={**operator, **PAGE})
        assert_database_503(form, json_body=False)
        assert "http-equiv" not in form.get_data(as_text=True)
        # Pages that need no database still work.
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 503
    finally:
        server.start()

    # Pre-ping replaces the connections the outage cut: the very first request succeeds.
    assert client.get("/accounts", headers={**operator, **PAGE}).status_code == 200
    assert client.get("/accounts", headers={**operator, **PARTIAL}).status_code == 200


def test_connections_the_server_cut_are_replaced_before_use(own_app, server):
    """A failover or a restart between two requests closes every pooled connection; pre-ping finds them closed."""
    client = own_app.test_client()
    operator = proxy_headers("failover@example.com")
    assert client.get("/accounts", headers={**operator, **PAGE}).status_code == 200
    with psycopg.connect(server.url(), autocommit=True) as admin:
        cut = admin.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = 'backoffice' AND pid <> pg_backend_pid()").fetchone()[0]
    assert cut >= 1
    assert client.get("/accounts", headers={**operator, **PAGE}).status_code == 200

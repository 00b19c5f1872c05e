"""The page shell: menu, htmx page-or-partial, Vary, locale, kiosk, billing gate, health and metrics."""
import pytest

HTMX = {"HX-Request": "true"}


def test_full_page_has_the_shell(client, operator_headers):
    response = client.get("/users", headers=operator_headers)
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<!doctype html>" in page
    for label in ("Dashboard", "Accounts", "Users", "Billing events", "Invoices", "Coming soon", "Feature flags",
                  "Support", "Wait list"):
        assert label in page
    assert 'id="pane"' in page and 'id="banners"' in page and "<main" in page
    assert 'name="csrf-token"' in page and "X-CSRFToken" in page
    assert "vendor/htmx-2.0.11/htmx.min.js" in page
    assert "<h1>Users</h1>" in page
    assert "HX-Request" in response.headers["Vary"]


def test_htmx_request_gets_only_the_partial(client, operator_headers):
    response = client.get("/users", headers={**operator_headers, **HTMX})
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<!doctype html>" not in fragment and "<nav" not in fragment
    assert 'data-testid="empty-state"' in fragment and "<h1>" not in fragment
    assert "HX-Request" in response.headers["Vary"]


@pytest.mark.parametrize("header", ["HX-Boosted", "HX-History-Restore-Request"])
def test_boosted_and_history_restore_get_the_full_page(client, operator_headers, header):
    response = client.get("/users", headers={**operator_headers, **HTMX, header: "true"})
    assert "<!doctype html>" in response.get_data(as_text=True)


def test_billing_surfaces_hidden_when_subscriptions_are_not_public(client, settings, operator_headers):
    settings(PUBLIC_SUBSCRIPTION_ENABLED=False)
    page = client.get("/", headers=operator_headers).get_data(as_text=True)
    assert "Billing events" not in page and "Invoices" not in page
    assert client.get("/invoices", headers=operator_headers).status_code == 404
    assert client.get("/billing-events", headers=operator_headers).status_code == 404


def test_locale_follows_accept_language(client, operator_headers):
    page = client.get("/", headers={**operator_headers, "Accept-Language": "da-DK,da;q=0.9"}).get_data(as_text=True)
    assert '<html lang="da"' in page
    assert "Konti" in page and "Kommer snart" in page


def test_locale_switch_is_remembered(client, operator_headers, settings):
    settings(WTF_CSRF_ENABLED=False)
    response = client.post("/preferences/locale", headers=operator_headers, data={"locale": "da", "next": "/users"})
    assert (response.status_code, response.headers["Location"]) == (303, "/users")
    page = client.get("/", headers={**operator_headers, "Accept-Language": "en"}).get_data(as_text=True)
    assert '<html lang="da"' in page


def test_unknown_locale_is_refused_with_a_message(client, operator_headers, settings):
    settings(WTF_CSRF_ENABLED=False)
    client.post("/preferences/locale", headers=operator_headers, data={"locale": "xx", "next": "/"})
    assert "Unknown language: xx" in client.get("/", headers=operator_headers).get_data(as_text=True)


def test_kiosk_mode_toggles_and_is_remembered(client, operator_headers, settings):
    settings(WTF_CSRF_ENABLED=False)
    assert 'class="kiosk"' not in client.get("/", headers=operator_headers).get_data(as_text=True)
    client.post("/preferences/kiosk", headers=operator_headers, data={"next": "/"})
    assert 'class="kiosk"' in client.get("/", headers=operator_headers).get_data(as_text=True)
    client.post("/preferences/kiosk", headers=operator_headers, data={"next": "/"})
    assert 'class="kiosk"' not in client.get("/", headers=operator_headers).get_data(as_text=True)


def test_unknown_page_is_a_404_page(client, operator_headers):
    response = client.get("/nowhere", headers={**operator_headers, "Accept": "text/html"})
    assert response.status_code == 404
    assert "There is nothing at this address." in response.get_data(as_text=True)


def test_healthz_needs_no_login(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_reports_database_migrations_and_in_process_jobs(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {
        "database": "ok", "migrations": "at head", "redis": "not configured: jobs run in-process"}}


def test_readyz_is_503_when_redis_is_unreachable(client, settings):
    settings(REDIS_URL="redis://127.0.0.1:1/0")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"].startswith("unavailable")


def test_metrics_need_an_operator_and_count_requests(client, operator_headers):
    assert client.get("/metrics", headers={"Accept": "text/plain"}).status_code == 401
    client.get("/healthz")
    body = client.get("/metrics", headers=operator_headers).get_data(as_text=True)
    assert 'backoffice_http_requests_total{endpoint="health.healthz",method="GET",status="200"}' in body
    assert "backoffice_http_request_duration_seconds_bucket" in body


def test_static_files_have_versioned_urls_cached_for_a_year(client, operator_headers):
    import re

    page = client.get("/accounts", headers=operator_headers).get_data(as_text=True)
    versioned = re.search(r'src="(/static/js/app\.js\?v=[0-9a-f]{12})"', page).group(1)
    with client.get(versioned) as cached:
        assert cached.status_code == 200 and "immutable" in cached.headers["Cache-Control"]
        assert "max-age=31536000" in cached.headers["Cache-Control"]
    with client.get("/static/js/app.js") as by_hand:  # a URL written by hand is revalidated
        assert by_hand.headers["Cache-Control"] == "no-cache"

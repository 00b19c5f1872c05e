"""/users over HTTP: the list URL convention, page and partial, pane, a person's page and tabs, CSV, escaping."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest

from backoffice.accounts.models import Login, User, UserSession
from tests.factories import make_tenant

NOW = datetime.now(UTC)
HX = {"HX-Request": "true"}
CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
          "Safari/537.36")
OPERA = CHROME.replace("Chrome/131", "Chrome/130") + " OPR/115.0.0.0"


@pytest.fixture
def people(data):
    """Ann in two accounts (her sign-ins and sessions), Bob, a never-seen member, and a deleted account's user."""
    with data() as session:
        aurora = make_tenant(session, name="Aurora Analytics")
        birch = make_tenant(session, name="Birch & Co")
        gone = make_tenant(session, name="Gone Tenant", deleted_at=NOW - timedelta(days=1))
        rows = [("ann", aurora, "ann@aurora.example", "Ann", "Lee", "owner", NOW - timedelta(hours=2)),
                ("ann2", birch, "ANN@aurora.example", "Ann", "Lee", "member", NOW - timedelta(days=12)),
                ("bob", aurora, "bob@aurora.example", "Bob", None, "admin", NOW - timedelta(days=5)),
                ("zed", birch, "zed@birch.example", None, None, "member", None),
                ("ghost", gone, "ghost@gone.example", "Ghost", None, "owner", NOW)]
        for key, tenant, email, first, last, role, seen in rows:
            session.add(User(id=f"usr_{key}", tenant_id=tenant.id, email=email, first_name=first, last_name=last,
                             role=role, email_confirmed=key != "zed", last_seen_at=seen,
                             created_at=NOW - timedelta(days=50)))
        session.flush()
        for index in range(30):
            session.add(Login(id=f"lgn_{index:02d}", user_id="usr_ann", email="ann@aurora.example",
                              method="google" if index % 2 else "one_time_password",
                              outcome="failed" if index == 1 else "succeeded", ip_address="192.0.2.10",
                              user_agent=OPERA if index == 0 else CHROME, created_at=NOW - timedelta(days=index * 2)))
        session.add(UserSession(id="ses_live", user_id="usr_ann", tenant_id=aurora.id, created_at=NOW - timedelta(days=1),
                                login_method="google", user_agent=CHROME))
        session.add(UserSession(id="ses_done", user_id="usr_ann2", tenant_id=birch.id, created_at=NOW - timedelta(days=3),
                                login_method="google", revoked_at=NOW - timedelta(days=2), revoked_reason="switch_tenant"))
        return {"aurora": aurora.id, "birch": birch.id}


def emails(response) -> list[str]:
    text = response.get_data(as_text=True)
    return [part.split("</td>", 1)[1].split("<td>", 1)[1].split("</td>", 1)[0]
            for part in text.split('class="person name-cell"')[1:]]


def test_list_shows_live_users_last_seen_first(client, operator_headers, people):
    response = client.get("/users", headers=operator_headers)
    assert response.status_code == 200 and "HX-Request" in response.headers["Vary"]
    assert emails(response) == ["ann@aurora.example", "bob@aurora.example", "ANN@aurora.example", "zed@birch.example"]
    text = response.get_data(as_text=True)
    assert "ghost@gone.example" not in text and f'href="/accounts/{people["aurora"]}"' in text
    assert 'class="avatar avatar-sm" aria-hidden="true">AL<' in text  # initials when there is no picture
    assert "never" in text and 'class="badge role role-owner"' in text


@pytest.mark.parametrize("query, message", [
    ("q=" + "x" * 101, "too long"),
    ("sort=shoe_size", "Unknown sort"),
    ("role=king", "Unknown role"),
    ("activity=1y", "Unknown activity"),
    ("per_page=5", "per_page"),
    ("page=0", "page"),
    ("page=9", "does not exist"),
    ("after=garbage", "cursor"),
])
def test_bad_list_parameters_are_a_clear_400(client, operator_headers, people, query, message):
    response = client.get(f"/users?{query}", headers=operator_headers)
    assert response.status_code == 400 and message in response.get_data(as_text=True)


def test_filters_search_and_sort_come_from_the_url(client, operator_headers, people):
    assert emails(client.get("/users?role=owner&role=admin", headers=operator_headers)) == [
        "ann@aurora.example", "bob@aurora.example"]
    assert emails(client.get("/users?q=ann+lee", headers=operator_headers)) == ["ann@aurora.example", "ANN@aurora.example"]
    assert emails(client.get("/users?q=birch", headers=operator_headers)) == ["ANN@aurora.example", "zed@birch.example"]
    assert emails(client.get("/users?sort=email", headers=operator_headers))[0] == "ann@aurora.example"
    assert emails(client.get("/users?sort=-email", headers=operator_headers))[0] == "zed@birch.example"


@pytest.mark.parametrize("activity, expected", [
    ("24h", ["ann@aurora.example"]),
    ("30d", ["ann@aurora.example", "bob@aurora.example", "ANN@aurora.example"]),
    ("inactive", ["zed@birch.example"]),
])
def test_the_dashboard_links_work_and_show_a_removable_badge(client, operator_headers, people, activity, expected):
    response = client.get(f"/users?activity={activity}", headers=operator_headers)
    text = response.get_data(as_text=True)
    assert emails(response) == expected
    assert f'data-filter-value="activity={activity}"' in text and 'href="/users"' in text


def test_partial_for_htmx_and_page_without(client, operator_headers, people):
    full = client.get("/users?role=member", headers=operator_headers)
    partial = client.get("/users?role=member", headers={**operator_headers, **HX})
    assert "<html" in full.get_data(as_text=True) and "<html" not in partial.get_data(as_text=True)
    assert emails(partial) == emails(full) == ["ANN@aurora.example", "zed@birch.example"]
    assert "HX-Request" in partial.headers["Vary"] and partial.headers["HX-Push-Url"] == "/users?role=member"


def test_empty_and_no_results_states(client, operator_headers, data):
    assert "No users yet" in client.get("/users", headers=operator_headers).get_data(as_text=True)
    none = client.get("/users?q=zzz&activity=24h", headers=operator_headers).get_data(as_text=True)
    assert "Nothing matches these filters" in none and "Clear filters" in none


def test_csv_export_has_every_filtered_row_in_order(client, operator_headers, people):
    response = client.get("/users.csv?sort=email&role=member", headers=operator_headers)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "users.csv" in response.headers["Content-Disposition"]
    table = list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"))))
    assert table[0][:5] == ["id", "email", "first_name", "last_name", "name"]
    assert [(row[1], row[4], row[6]) for row in table[1:]] == [
        ("ANN@aurora.example", "Ann Lee", "Birch & Co"), ("zed@birch.example", "zed@birch.example", "Birch & Co")]
    text = client.get("/users?role=member&sort=email", headers=operator_headers).get_data(as_text=True)
    assert 'href="/users.csv?role=member&amp;sort=email"' in text
    assert client.get("/users.csv?activity=never", headers=operator_headers).status_code == 400


def test_the_pane_partial_and_its_bookmark(client, operator_headers, people):
    pane = client.get("/users/usr_ann2/pane", headers={**operator_headers, **HX})
    text = pane.get_data(as_text=True)
    assert pane.status_code == 200 and "<html" not in text and "HX-Request" in pane.headers["Vary"]
    assert "Ann Lee" in text and "Aurora Analytics" in text and "Birch &amp; Co" in text
    bookmark = client.get("/users/usr_ann/pane", headers=operator_headers)
    assert bookmark.status_code == 303 and bookmark.location.endswith("/users?pane=usr_ann")
    page = client.get("/users?pane=usr_ann", headers=operator_headers).get_data(as_text=True)
    assert "<html" in page and 'data-testid="user-pane"' in page
    assert client.get("/users/usr_nobody/pane", headers={**operator_headers, **HX}).status_code == 404
    assert client.get("/users?pane=usr_ghost", headers=operator_headers).status_code == 404


@pytest.mark.parametrize("tab, marker", [
    ("", 'data-testid="memberships"'),
    ("/logins", 'data-testid="logins"'),
    ("/sessions", 'data-testid="sessions"'),
])
def test_each_tab_is_a_url_with_page_and_partial(client, operator_headers, people, tab, marker):
    url = f"/users/usr_ann{tab}"
    full = client.get(url, headers=operator_headers)
    partial = client.get(url, headers={**operator_headers, **HX})
    assert full.status_code == partial.status_code == 200
    assert "<html" in full.get_data(as_text=True) and "<html" not in partial.get_data(as_text=True)
    assert marker in full.get_data(as_text=True) and marker in partial.get_data(as_text=True)
    assert 'aria-current="page"' in partial.get_data(as_text=True) and "HX-Request" in partial.headers["Vary"]


def test_the_person_page_header_kpis_and_overview(client, operator_headers, people):
    text = client.get("/users/usr_ann2", headers=operator_headers).get_data(as_text=True)
    assert "<h1>Ann Lee</h1>" in text and "ANN@aurora.example" in text and "Last seen" in text
    assert 'data-kpi="memberships" data-value="2"' in text
    assert 'data-kpi="active-sessions" data-value="1"' in text
    assert 'data-kpi="recent-logins" data-value="15"' in text  # every other day for 30 days: days 0…28
    overview = text.split('data-testid="tab-overview"', 1)[1]
    assert f'href="/accounts/{people["aurora"]}"' in overview and f'href="/accounts/{people["birch"]}"' in overview
    assert overview.count("data-login=") == 15 and "lgn_15" not in overview  # older than 30 days: not here
    assert 'data-browser>Opera 115<' in overview and 'data-browser>Chrome 131<' in overview
    assert client.get("/users/usr_ghost", headers=operator_headers).status_code == 404
    assert client.get("/users/usr_nobody/logins", headers=operator_headers).status_code == 404


def test_the_never_seen_person_is_named_by_email(client, operator_headers, people):
    text = client.get("/users/usr_zed", headers=operator_headers).get_data(as_text=True)
    assert "<h1>zed@birch.example</h1>" in text and "Never seen" in text and "No logins in the last 30 days" in text


def test_the_logins_tab_pages_on_the_server(client, operator_headers, people):
    first = client.get("/users/usr_ann/logins?per_page=10", headers={**operator_headers, **HX})
    text = first.get_data(as_text=True)
    assert text.count("data-login=") == 10 and "30 results" in text and "lgn_00" in text
    assert first.headers["HX-Push-Url"] == "/users/usr_ann/logins?per_page=10"
    next_url = text.split('rel="next"', 1)[0].rsplit('href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    assert "after=" in next_url and next_url.startswith("/users/usr_ann/logins?")
    second = client.get(next_url, headers=operator_headers).get_data(as_text=True)
    assert "lgn_10" in second and "lgn_09" not in second
    last = client.get("/users/usr_ann/logins?per_page=10&page=3", headers=operator_headers).get_data(as_text=True)
    assert "lgn_29" in last and "One-time password" in last and "outcome-failed" not in last
    assert client.get("/users/usr_ann/logins?page=9", headers=operator_headers).status_code == 400
    assert client.get("/users/usr_ann/logins?sort=ip", headers=operator_headers).status_code == 400


def test_the_sessions_tab_spans_accounts_with_revoked_badges(client, operator_headers, people):
    text = client.get("/users/usr_ann/sessions", headers=operator_headers).get_data(as_text=True)
    table = text.split('data-testid="sessions"', 1)[1]
    assert table.index("ses_live") < table.index("ses_done")
    assert 'data-revoked="switch_tenant"' in table and "Switched account" in table and "Revoked" in table
    assert "Aurora Analytics" in table and "Birch &amp; Co" in table


def test_names_are_escaped_everywhere(client, operator_headers, data):
    xss = "<script>alert(1)</script>"
    with data() as session:
        tenant = make_tenant(session, name=xss)
        session.add(User(id="usr_xss", tenant_id=tenant.id, email="x@x.example", first_name=xss, role="owner"))
        session.add(Login(id="lgn_xss", email="x@x.example", method="google", outcome="failed", user_agent=xss,
                          ip_address=xss))
    for url, headers in (("/users", operator_headers), ("/users/usr_xss", operator_headers),
                         ("/users/usr_xss/logins", operator_headers), ("/users/usr_xss/pane", {**operator_headers, **HX})):
        text = client.get(url, headers=headers).get_data(as_text=True)
        assert xss not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text, url


def test_users_need_a_signed_in_operator(client, people):
    assert client.get("/users", headers={"Accept": "application/json"}).status_code == 401
    assert client.get("/users/usr_ann", headers={"Accept": "application/json"}).status_code == 401


def test_a_list_longer_than_the_count_limit_says_more_than(client, operator_headers, people, monkeypatch):
    from backoffice.accounts import people as queries

    monkeypatch.setattr(queries, "COUNT_LIMIT", 2)
    text = client.get("/users?per_page=10", headers=operator_headers).get_data(as_text=True)
    assert "More than 2 results" in text and 'rel="next"' not in text  # all four fit on the page

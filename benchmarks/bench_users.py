"""Benchmark the users surfaces at scale: the list under every filter and sort, search, deep pages, a person.

    python -m benchmarks.bench_users [--users 1000000] [--logins 5000000] [--requests 200] [--keep DATABASE]

Tenants, users (a few people in several accounts, some without names, some never seen, some deleted),
logins and sessions are drawn from the demo's names and user agents and COPYed in with the tables' indexes
dropped, then the indexes are built from the models (as a bulk load would). One person has HEAVY_LOGINS
logins and a few thousand sessions over three accounts: the detail page's worst case. Requests go through the
app in-process (server time, no network), as htmx requests for the partials. Prints p50/p95 per kind of
request against the issue's targets.
"""
from __future__ import annotations

import argparse
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote_plus

import sqlalchemy as sa

from backoffice.accounts import people
from backoffice.accounts.models import Login, Tenant, User, UserSession
from backoffice.demo.names import COMPANY_FIRST, COMPANY_SECOND, COUNTRIES
from backoffice.demo.people import _ascii
from backoffice.demo.user_agents import BOT_USER_AGENT, USER_AGENTS
from backoffice.demo.writer import copy_rows
from backoffice.extensions import db
from benchmarks.web_bench import HEADERS, PARTIAL, arguments, loaded_app, report, timed

NOW = datetime.now(UTC)
TARGETS = {"search": 60.0, "detail": 100.0}
HEAVY_EMAIL = "heavy.person@bench.example"
HEAVY_LOGINS = 10_000
HEAVY_SESSIONS = 3_000
USERS_PER_TENANT = 10
BATCH = 20_000
AGENTS = [agent for _, _, agent in USER_AGENTS] + [BOT_USER_AGENT]


def ago(rng: random.Random, days: float) -> datetime:
    return NOW - timedelta(seconds=rng.uniform(0, days * 86400))


def tenants(rng: random.Random, count: int) -> Iterator[dict]:
    countries = list(COUNTRIES)
    for index in range(count):
        country = rng.choice(countries)
        yield {"id": f"ten_{index:08d}", "name": f"{rng.choice(COMPANY_FIRST)} {rng.choice(COMPANY_SECOND)} "
               f"{COUNTRIES[country][1]}", "created_at": ago(rng, 900), "state": "active", "country": country,
               "deleted_at": NOW - timedelta(days=1) if index > 20 and rng.random() < 0.02 else None, "plan": "basis"}


def users(rng: random.Random, count: int, tenant_count: int) -> Iterator[dict]:
    """Users spread over the tenants; 4 % share an email with an earlier user (people in several accounts)."""
    countries = list(COUNTRIES)
    shared: list[tuple[str, str | None, str | None]] = []
    taken: set[tuple[int, str]] = set()  # (tenant, email) of shared people: one membership per account
    for index in range(count):
        tenant = index // USERS_PER_TENANT if index < tenant_count * USERS_PER_TENANT else rng.randrange(tenant_count)
        if index < 3:
            email, first, last = HEAVY_EMAIL, "Heavy", "Person"
            tenant = index * 7
        elif shared and rng.random() < 0.04 and (tenant, (person := rng.choice(shared))[0]) not in taken:
            email, first, last = person
            taken.add((tenant, email))
        else:
            country = COUNTRIES[rng.choice(countries)]
            first, last = rng.choice(country[3]), rng.choice(country[4])
            email = f"{_ascii(first)}.{_ascii(last)}{rng.randint(1, 99999)}@{_ascii(rng.choice(COMPANY_FIRST))}.example"
            shape = rng.random()
            first, last = (None if shape < 0.03 else first), (None if 0.03 <= shape < 0.06 else last)
            if rng.random() < 0.02:
                shared.append((email, first, last))
                taken.add((tenant, email))
        yield {"id": f"usr_{index:08d}", "tenant_id": f"ten_{tenant:08d}", "email": email, "first_name": first,
               "last_name": last, "role": "owner" if index % USERS_PER_TENANT == 0 else rng.choice(
                   ("admin", "member", "member", "member")), "email_confirmed": True, "created_at": ago(rng, 900),
               "last_seen_at": None if rng.random() < 0.1 else NOW - timedelta(days=400 * rng.random() ** 3),
               "deleted_at": NOW - timedelta(days=2) if index >= 3 and rng.random() < 0.05 else None}


def logins(rng: random.Random, count: int, user_emails: list[str]) -> Iterator[dict]:
    for index in range(count):
        if index < HEAVY_LOGINS:
            user_index = index % 3
        else:
            user_index = rng.randrange(3, len(user_emails))
        outcome = rng.choices(("succeeded", "failed", "pending"), (92, 6, 2))[0]
        yield {"id": f"lgn_{index:09d}", "user_id": f"usr_{user_index:08d}", "email": user_emails[user_index],
               "method": rng.choice(("google", "one_time_password")), "outcome": outcome,
               "ip_address": f"192.0.2.{rng.randint(1, 254)}", "user_agent": rng.choice(AGENTS),
               "created_at": ago(rng, 700)}


def sessions(rng: random.Random, count: int, tenant_of: list[str]) -> Iterator[dict]:
    for index in range(count):
        user_index = index % 3 if index < HEAVY_SESSIONS else rng.randrange(3, len(tenant_of))
        created = ago(rng, 400)
        revoked = rng.random() < 0.8
        yield {"id": f"ses_{index:09d}", "user_id": f"usr_{user_index:08d}", "tenant_id": tenant_of[user_index],
               "created_at": created, "last_active_at": created, "login_method": "google",
               "ip_address": "198.51.100.9", "user_agent": rng.choice(AGENTS),
               "revoked_at": created + timedelta(hours=5) if revoked else None,
               "revoked_reason": "logged_out" if revoked else None}


def copy_in_batches(table: sa.Table, rows: Iterator[dict]) -> int:
    total, batch = 0, []
    for row in rows:
        batch.append(row)
        if len(batch) == BATCH:
            total += copy_rows(db.session, table, batch)
            batch = []
    return total + copy_rows(db.session, table, batch)


def load(user_count: int, login_count: int) -> dict[str, int]:
    """Generate and COPY the dataset with the secondary indexes dropped, then build them; return row counts."""
    rng = random.Random(7)
    tables = [Tenant.__table__, User.__table__, Login.__table__, UserSession.__table__]
    indexes = [index for table in tables for index in table.indexes]
    connection = db.session.connection()
    for index in indexes:
        connection.execute(sa.text(f"DROP INDEX {index.name}"))
    connection.execute(sa.text("SET session_replication_role = replica"))  # no foreign-key triggers during the load
    tenant_count = max(3 * 7 + 1, user_count // USERS_PER_TENANT)
    counts = {"tenants": copy_in_batches(Tenant.__table__, tenants(rng, tenant_count))}
    user_rows = users(rng, user_count, tenant_count)
    emails: list[str] = []
    tenant_of: list[str] = []

    def remembered() -> Iterator[dict]:
        for row in user_rows:
            emails.append(row["email"])
            tenant_of.append(row["tenant_id"])
            yield row

    counts["users"] = copy_in_batches(User.__table__, remembered())
    counts["logins"] = copy_in_batches(Login.__table__, logins(rng, login_count, emails))
    counts["sessions"] = copy_in_batches(UserSession.__table__, sessions(rng, user_count // 2 + HEAVY_SESSIONS, tenant_of))
    connection = db.session.connection()
    connection.execute(sa.text("SET session_replication_role = DEFAULT"))
    connection.execute(sa.text("SET maintenance_work_mem = '512MB'"))
    for index in indexes:
        index.create(connection)
    return counts


def deep_cursors(rng: random.Random, sort: str, descending: bool, count: int, total: int) -> list[tuple[int, str]]:
    """Cursors of random deep pages, found once by the domain (not timed): what a walk by Next arrives with."""
    found = []
    for _ in range(count):
        page = rng.randint(total // 50 // 2, total // 50 - 1)
        cursor = people.list_users(db.session, people.UserFilter(now=NOW), sort=sort, descending=descending,
                                   page=page, per_page=50).next_cursor
        found.append((page + 1, cursor))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--logins", type=int, default=5_000_000)
    options = arguments(parser)
    rng = random.Random(11)
    with loaded_app(options.keep, "users", lambda: load(options.users, options.logins)) as (app, _url):
        with app.app_context():
            sample = db.session.execute(sa.text(
                "SELECT u.id, u.email, u.first_name, u.last_name, t.name FROM users u JOIN tenants t ON t.id = u.tenant_id"
                " WHERE u.deleted_at IS NULL AND t.deleted_at IS NULL ORDER BY random() LIMIT :n"),
                {"n": options.requests}).all()
            live = db.session.scalar(sa.text("SELECT count(*) FROM users u JOIN tenants t ON t.id = u.tenant_id"
                                             " WHERE u.deleted_at IS NULL AND t.deleted_at IS NULL"))
            cursors = {sort: deep_cursors(rng, sort, descending, max(5, options.requests // 20), live)
                       for sort, descending in (("last_seen", True), ("name", False))}
            heavy = db.session.scalar(sa.text("SELECT id FROM users WHERE email = :e ORDER BY id LIMIT 1"),
                                      {"e": HEAVY_EMAIL})
            heavy_logins = people.list_logins(db.session, HEAVY_EMAIL, per_page=100)
            deep_login = people.list_logins(db.session, HEAVY_EMAIL, per_page=100, page=heavy_logins.pages // 2)
        headers, partial = HEADERS, PARTIAL
        client = app.test_client()
        timed(client, ["/users"] * 20, partial)  # warm the pool and the templates
        n = options.requests
        print(f"\n{live:,} live users of {options.users:,}, {options.logins:,} logins; {n} requests per line; "
              "milliseconds of server time (in-process WSGI)")
        print(f"{'request':<40}{'n':>6}{'p50':>10}{'p95':>10}{'max':>10}")
        report("list, default (-last_seen)", timed(client, ["/users"] * (n // 4), partial), None)
        for sort in people.USER_SORTS:
            for sign in ("", "-"):
                report(f"list sort={sign}{sort}", timed(client, [f"/users?sort={sign}{sort}"] * (n // 8), partial), None)
        for query in ("activity=24h", "activity=30d", "activity=inactive", "activity=7d&role=owner", "role=admin",
                      "role=owner&sort=name"):
            report(f"list {query}", timed(client, [f"/users?{query}"] * (n // 8), partial), None)
        for sort, found in cursors.items():
            paths = [f"/users?sort={'-' if sort == 'last_seen' else ''}{sort}&per_page=50&page={page}&after={cursor}"
                     for page, cursor in found]
            report(f"list deep page by cursor ({sort})", timed(client, paths, partial), None)
        searches = {  # what an operator types: the start of an address, a name, a whole address, an account
            "search email, first 6 letters": [row.email[:6] for row in sample],
            "search exact email": [row.email for row in sample],
            "search last name": [row.last_name or row.email[:6] for row in sample],
            "search \"first last\"": [f"{row.first_name or ''} {row.last_name or ''}".strip() or row.email
                                      for row in sample],
            "search account name": [row.name.split()[0] + " " + row.name.split()[1][:4] for row in sample],
        }
        every_search: list[float] = []
        for name, terms in searches.items():
            timings = timed(client, [f"/users?q={quote_plus(term.lower())}" for term in terms], partial)
            every_search += timings
            report(name, timings, TARGETS["search"])
        report("search, all of the above", every_search, TARGETS["search"])
        report(f"person with {HEAVY_LOGINS:,} logins: overview", timed(client, [f"/users/{heavy}"] * (n // 4), headers),
               TARGETS["detail"])
        report("  logins tab, first page", timed(client, [f"/users/{heavy}/logins"] * (n // 4), partial), TARGETS["detail"])
        report("  logins tab, deep page by cursor", timed(
            client, [f"/users/{heavy}/logins?per_page=100&page={deep_login.page + 1}&after={deep_login.next_cursor}"]
            * (n // 4), partial), TARGETS["detail"])
        report("  sessions tab", timed(client, [f"/users/{heavy}/sessions"] * (n // 4), partial), TARGETS["detail"])
        report("random person: overview", timed(client, [f"/users/{row.id}" for row in sample], headers),
               TARGETS["detail"])
        report("random person: side pane", timed(client, [f"/users/{row.id}/pane" for row in sample], partial),
               TARGETS["detail"])
        started = time.perf_counter()
        response = client.get("/users.csv?activity=30d", headers=headers, buffered=False)
        lines = sum(chunk.count(b"\n") for chunk in response.iter_encoded())
        print(f"\nCSV export activity=30d: {lines - 1:,} rows in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()

"""Every route and method of app.url_map against every kind of caller, under each proxy configuration.

ACCESS says who each endpoint is for. A route added without an entry fails `test_every_route_has_an_entry`, so
nobody ships a page without deciding who may see it. The rest asks each (route, method) as:
anonymous (a browser is sent to sign in, JSON and htmx get 401), an operator (an admin-only route is 403), an admin,
and callers whose proxy headers must not be believed: proxy trust off, a peer outside TRUSTED_PROXY_ADDRESSES, a
missing or wrong PROXY_SHARED_SECRET, and principals no proxy would send (control characters, absurd lengths).
Those are anonymous; nothing is ever a 5xx.
"""
from __future__ import annotations

import base64
from dataclasses import dataclass, field

import pytest
from sqlalchemy import text

from tests.conftest import ADMINS_GROUP, proxy_headers
from tests.factories import make_subscription, make_tenant

PUBLIC, OPERATOR, ADMIN = "public", "operator", "admin"

# endpoint → who may use it (for every method it answers). Keep in step with the routes.
ACCESS = {
    "static": PUBLIC,
    "health.healthz": PUBLIC,
    "health.readyz": PUBLIC,
    "banners.stack": PUBLIC,  # a signed-out operator gets 286, which stops the banner's polling
    "operator.dev_login": PUBLIC,
    "operator.dev_login_submit": PUBLIC,
    "operator.dev_logout": PUBLIC,
    "operator.me": OPERATOR,
    "operator.toggle_kiosk": OPERATOR,
    "operator.choose_locale": OPERATOR,
    "operator.choose_theme": OPERATOR,
    "metrics": OPERATOR,
    "dashboard.index": OPERATOR,
    "dashboard.card": OPERATOR,
    "saas_metrics.index": OPERATOR,
    "saas_metrics.cohorts": OPERATOR,
    "saas_metrics.accounts": OPERATOR,
    "saas_metrics.export": OPERATOR,
    "accounts.index": OPERATOR,
    "accounts.export": OPERATOR,
    "accounts.detail": OPERATOR,
    "accounts.section": OPERATOR,
    "accounts.pane": OPERATOR,
    "accounts.sync_progress": OPERATOR,  # and then only the job's own operator, or an admin (test_exposure.py)
    "accounts.sync": ADMIN,
    "accounts.replay": ADMIN,
    "accounts.restate": ADMIN,
    "accounts.acknowledge_drift": ADMIN,
    "accounts.disaster_recovery": ADMIN,
    "users.index": OPERATOR,
    "users.export": OPERATOR,
    "users.detail": OPERATOR,
    "users.section": OPERATOR,
    "users.pane": OPERATOR,
    "billing_events.index": OPERATOR,
    "billing_events.export": OPERATOR,
    "billing_events.stripe_event": ADMIN,
    "invoices.index": OPERATOR,
    "invoices.export": OPERATOR,
    "search.index": OPERATOR,
    "failed_events.index": OPERATOR,
    "failed_events.export": OPERATOR,
    "failed_events.retry": ADMIN,
    "audit.index": OPERATOR,
    "audit.export": OPERATOR,
    "blobs.logo": OPERATOR,
    "blobs.avatar": OPERATOR,
    "jobs.index": OPERATOR,
    "jobs.start_sweep": ADMIN,
    "jobs.requeue_failures": ADMIN,
}

HTML = {"Accept": "text/html,application/xhtml+xml"}
JSON = {"Accept": "application/json"}
HTMX = {"Accept": "*/*", "HX-Request": "true", "HX-Current-URL": "http://localhost/accounts?q=a"}
KINDS = {"html": HTML, "json": JSON, "htmx": HTMX}
SECRET = "proxy-s3cret"
SECRET_HEADER = "X-Backoffice-Proxy-Secret"
INSIDE, OUTSIDE = "10.1.2.3", "192.0.2.7"


@dataclass(frozen=True)
class Caller:
    """Who asks: the headers they send, from where, and whom the console must take them for."""

    name: str
    headers: dict[str, str]
    is_: str  # "anonymous", OPERATOR or ADMIN
    remote: str = "127.0.0.1"
    extra: dict[str, str] = field(default_factory=dict)


def _operator() -> dict[str, str]:
    return proxy_headers("operator@example.com", display_name="Olga Operator")


def _admin() -> dict[str, str]:
    return proxy_headers("admin@example.com", groups=(ADMINS_GROUP,), display_name="Ada Admin")


def _malformed() -> list[Caller]:
    admin = _admin()
    claims_with_nul = base64.b64encode(
        b'{"claims": [{"typ": "groups", "val": "%s"}, {"typ": "name", "val": "Nul\\u0000Name"}]}' % ADMINS_GROUP.encode()
    ).decode()
    return [
        Caller("NUL in the name", {**admin, "X-MS-CLIENT-PRINCIPAL-NAME": "admin\x00@example.com"}, "anonymous"),
        Caller("NUL in the id", {**admin, "X-MS-CLIENT-PRINCIPAL-ID": "oid\x00x"}, "anonymous"),
        Caller("NUL in a claim", {**admin, "X-MS-CLIENT-PRINCIPAL": claims_with_nul}, "anonymous"),
        Caller("a 10,000-character name", {**admin, "X-MS-CLIENT-PRINCIPAL-NAME": "a" * 10_000}, "anonymous"),
        Caller("a blank name", {**admin, "X-MS-CLIENT-PRINCIPAL-NAME": "   "}, "anonymous"),
        # A principal blob that does not decode is not the proxy speaking: nobody is signed in.
        Caller("an undecodable principal", {**admin, "X-MS-CLIENT-PRINCIPAL": "%%%not-base64%%%"}, "anonymous"),
        Caller("a principal of the wrong shape", {**admin, "X-MS-CLIENT-PRINCIPAL": base64.b64encode(b"[1,2]").decode()},
               "anonymous"),
    ]


# configuration name → (settings, callers)
CONFIGURATIONS = {
    "trusted proxy": ({}, lambda: [
        Caller("anonymous", {}, "anonymous"),
        Caller("operator", _operator(), OPERATOR),
        Caller("admin", _admin(), ADMIN),
        *_malformed(),
    ]),
    "proxy headers not trusted": ({"TRUST_PROXY_HEADERS": False}, lambda: [
        Caller("operator headers", _operator(), "anonymous"),
        Caller("admin headers", _admin(), "anonymous"),
    ]),
    "trusted addresses only": ({"TRUSTED_PROXY_ADDRESSES": ("10.1.0.0/16",)}, lambda: [
        Caller("admin from outside", _admin(), "anonymous", remote=OUTSIDE),
        Caller("admin from outside, forwarded for an inside address", {**_admin(), "X-Forwarded-For": INSIDE},
               "anonymous", remote=OUTSIDE),
        Caller("operator from inside", _operator(), OPERATOR, remote=INSIDE),
        Caller("admin from inside", _admin(), ADMIN, remote=INSIDE),
    ]),
    "shared secret": ({"PROXY_SHARED_SECRET": SECRET}, lambda: [
        Caller("admin without the secret", _admin(), "anonymous"),
        Caller("admin with a wrong secret", {**_admin(), SECRET_HEADER: "guess"}, "anonymous"),
        Caller("admin with an empty secret", {**_admin(), SECRET_HEADER: ""}, "anonymous"),
        Caller("operator with the secret", {**_operator(), SECRET_HEADER: SECRET}, OPERATOR),
        Caller("admin with the secret", {**_admin(), SECRET_HEADER: SECRET}, ADMIN),
    ]),
}


def _requests(app, tenant_id: str) -> list[tuple[str, str, str]]:
    """(endpoint, method, url) for every rule and method, with sample values for the URL's variables."""
    samples = {"tenant_id": tenant_id, "user_id": "usr_nobody", "job_id": "0" * 32, "event_id": "evt_nobody",
               "card": "kpis", "name": "nobody.png", "filename": "css/app.css"}
    adapter = app.url_map.bind("localhost")
    found = []
    for rule in app.url_map.iter_rules():
        values = {name: samples[name] for name in rule.arguments if name in samples}
        for converter_name, converter in rule._converters.items():
            if hasattr(converter, "items"):  # any(...): its first choice
                values[converter_name] = next(iter(converter.items))
        url = adapter.build(rule.endpoint, values, force_external=False)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule.endpoint, method, url))
    return found


def _problem(access: str, caller: Caller, kind: str, response) -> str | None:
    """Why the response is wrong for this caller, or None."""
    status = response.status_code
    if status >= 500:
        return f"{status}"
    if access == PUBLIC:
        return "refused a public route" if status in (401, 403) else None
    if caller.is_ == "anonymous":
        if kind == "html":
            location = response.headers.get("Location", "")
            return None if status == 302 and location.startswith("/.auth/login/aad?") else f"{status} {location}"
        if status != 401 or response.get_json() != {"error": "authentication required"}:
            return f"{status}, not 401"
        if kind == "htmx" and not response.headers.get("HX-Redirect", "").startswith("/.auth/login/aad?"):
            return "no HX-Redirect to the login"
        return None
    if access == ADMIN and caller.is_ == OPERATOR:
        return None if status == 403 else f"{status}, not 403"
    if status in (401, 403) or response.headers.get("Location", "").startswith("/.auth/"):
        return f"{status}: a signed-in {caller.is_} was refused"
    return None


@pytest.fixture
def tenant_id(data):
    with data() as session:
        tenant = make_tenant(session, name="Matrix ApS")
        make_subscription(session, tenant_id=tenant.id)
        identifier = tenant.id
    return identifier


def test_every_route_has_an_entry(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - ACCESS.keys() == set(), "new routes: say in ACCESS who may use them"
    assert ACCESS.keys() - endpoints == set(), "ACCESS names routes that are gone"


def test_the_table_agrees_with_the_code(app):
    """`public` marks a view reachable without an operator; admin-only views answer 403 (asked below)."""
    for endpoint, access in ACCESS.items():
        if endpoint == "static":
            continue
        assert getattr(app.view_functions[endpoint], "public", False) == (access == PUBLIC), endpoint


@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_auth_matrix(app, client, settings, tenant_id, configuration):
    overrides, callers = CONFIGURATIONS[configuration]
    # CSRF is its own check (test_identity.py), asked before this one: off here, so the answer is identity's.
    settings(WTF_CSRF_ENABLED=False, **overrides)
    problems, asked = [], 0
    requests = _requests(app, tenant_id)
    for endpoint, method, url in requests:
        for caller in callers():
            for kind, accept in KINDS.items():
                response = client.open(url, method=method, headers={**caller.headers, **accept},
                                       environ_base={"REMOTE_ADDR": caller.remote})
                asked += 1
                problem = _problem(ACCESS[endpoint], caller, kind, response)
                if problem:
                    problems.append(f"{method} {url} as {caller.name} ({kind}): {problem}")
                response.close()
    assert problems == [], "\n".join(problems[:40])
    assert asked == len(requests) * len(callers()) * len(KINDS) and len(requests) >= len(ACCESS)


# None: Stripe's webhook, which it signs instead, is answered before Flask and so is no endpoint here
# (web/webhooks/intake.py; tests/web/test_stripe_webhook.py covers it).
CSRF_EXEMPT: set[str] = set()


def test_every_post_without_its_csrf_token_is_refused_and_writes_nothing(app, client, data, tenant_id):
    """A forged form (an admin's browser made to post from another site) carries no token: every POST refuses it
    before any work, so no audit entry, job or ledger row can come of it."""
    def counts():
        with data() as session:
            return session.execute(text("SELECT (SELECT count(*) FROM operator_actions), "
                                        "(SELECT count(*) FROM billing_events), (SELECT count(*) FROM stripe_events)")
                                   ).one()
    before, forged = counts(), 0
    problems = []
    for endpoint, method, url in _requests(app, tenant_id):
        if method != "POST" or endpoint in CSRF_EXEMPT:
            continue
        for kind, accept in KINDS.items():
            response = client.post(url, data={"reason": "forged", "cutoff": "2026-01-01"},
                                   headers={**_admin(), **accept, "Origin": "https://evil.example"})
            forged += 1
            if response.status_code != 400:
                problems.append(f"POST {url} ({kind}): {response.status_code}, not 400")
    assert problems == [], "\n".join(problems)
    assert forged >= 3 * 8 and counts() == before

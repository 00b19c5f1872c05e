"""Bad input on every route (issue 18): each parameter a route reads, fed each class of bad value, is answered with
a 4xx that says what was wrong (or the page, where the value is legitimate), never a 5xx, and a refusal writes
nothing.

The routes come from `app.url_map`, and the parameters from what each route reads on a good request (recorded by a
request class whose argument and form dicts note every name asked for), so a new route or parameter is covered
without touching this file. Out of scope here, with their own tests: job ids (the `sync` parameter and `<job_id>`)
and the login `next` parameter (issue 18's auth part).
"""
from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import quote

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import ImmutableMultiDict

from backoffice import create_app
from backoffice.accounts.models import User
from backoffice.billing.models import BillingEvent, StripeEvent
from backoffice.blobs import BlobStore
from backoffice.operators.models import OperatorAction
from tests.conftest import BASE_CONFIG
from tests.factories import archive_event, make_billing_event, make_subscription, make_tenant, new_id

# Flask's own file server: werkzeug's safe_join answers every traversal with 404 before any code of ours runs.
SKIPPED_ENDPOINTS = {"static"}
# Owned by the job-status and login-redirect parts of issue 18, which test them against their own rules.
OUT_OF_SCOPE_PARAMETERS = {"next", "sync"}
OUT_OF_SCOPE_PATH_ARGUMENTS = {"job_id"}
# Development login routes answer 404 unless the development login is on; they are probed with it on.
DEV_LOGIN_ENDPOINTS = {"operator.dev_login", "operator.dev_login_submit", "operator.dev_logout"}

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def _routes() -> list[tuple[str, str, str]]:
    """(endpoint, method, rule) of every route, read from a freshly built app's url_map."""
    app = create_app({**BASE_CONFIG, "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://unused@127.0.0.1/unused"})
    return sorted((rule.endpoint, method, rule.rule) for rule in app.url_map.iter_rules()
                  for method in sorted(rule.methods - {"HEAD", "OPTIONS"}) if rule.endpoint not in SKIPPED_ENDPOINTS)


ROUTES = _routes()


# The classes of bad values. A `Raw` value goes into the URL or body as written (already percent-encoded).
@dataclass(frozen=True)
class Raw:
    text: str


def cursor(values: list) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


VALUES: dict[str, str | Raw] = {
    "empty": "",
    "too long": "x" * 10_000,
    "NUL": "\x00x",
    "unit separator": "a\x1fb",
    "DEL": "\x7f",
    "C1 control": "\x85",
    "invalid UTF-8": Raw("%ff%fe"),
    "a lone surrogate's encoding": Raw("%ed%a0%80"),
    "unknown value": "zzz-unknown",
    "negative": "-1",
    "zero": "0",
    "huge": str(10**30),
    "very many digits": "9" * 5000,
    "superscript two": "²",
    "Arabic-Indic digit": "٣",
    "fraction": "1.5",
    "true-ish": "yes",
    "date out of range (late)": "9999-12-31T23:59:59-14:00",
    "date out of range (early)": "0001-01-01T00:00:00+14:00",
    "traversal": "../../etc/passwd",
    "HTML": "<script>alert(1)</script>",
}
# Cursors: garbage, and valid base64 JSON of every width whose values have the wrong types for the list's keys.
WRONG_TYPES: dict[str, object] = {
    "text": "zzz", "integer": 7, "huge integer": 10**30, "boolean": True, "null": None, "float": 1.5,
    "timestamp": {"t": "2026-01-01T00:00:00+00:00"}, "date": {"d": "2026-01-01"}, "number": {"n": "1.5"},
    "NaN": {"n": "NaN"}, "infinity": {"n": "Infinity"}, "bad timestamp": {"t": "not a time"},
    "text with NUL": "a\x00b", "a list": [1], "an object": {"x": 1},
}
CURSORS: dict[str, str | Raw] = {
    "garbage": "garbage!", "not base64": "%%%", "base64 of not JSON": "bm90IGpzb24", "JSON object": cursor({"a": 1}),
    "too long": "A" * 10_000,
    **{f"{width} × {name}": cursor([value] * width) for width in range(1, 7) for name, value in WRONG_TYPES.items()},
    **{f"mixed of {width}": cursor(["zzz", {"t": "2026-01-01T00:00:00+00:00"}, 7, {"n": "1"}, True, None][:width])
       for width in range(1, 7)},
}
# Path arguments: ids of the wrong shape, ids that do not exist, traversal and overlong blob names.
PATH_VALUES: dict[str, str | Raw] = {
    "too long": "x" * 10_000,
    "NUL": Raw("a%00b"),
    "unit separator": Raw("a%1fb"),
    "DEL": Raw("%7f"),
    "invalid UTF-8": Raw("%ff%fe"),
    "wrong shape": "not an id!",
    "does not exist": "zzz_doesnotexist",
    "dot dot": "..",
    "encoded dot dot": Raw("%2e%2e"),
    "encoded traversal": Raw("..%2f..%2fetc%2fpasswd"),
    "300-character name": "a" * 296 + ".png",
    "255-character name": "a" * 251 + ".png",
    "HTML": "<script>",
}


# Recording what a route reads.

class _Recording(ImmutableMultiDict):
    """A request's args or form that notes every name a view asks for."""

    read: set[str] = set()

    def __getitem__(self, key):
        _Recording.read.add(key)
        return super().__getitem__(key)

    def getlist(self, key, type=None):
        _Recording.read.add(key)
        return super().getlist(key, type)

    def __contains__(self, key):
        _Recording.read.add(key)
        return super().__contains__(key)


@pytest.fixture
def recording(app, monkeypatch):
    """Make the app's requests record the parameter names their views read; yield the set of names."""
    monkeypatch.setattr(app, "request_class", type("RecordingRequest", (app.request_class,),
                                                   {"parameter_storage_class": _Recording}))
    _Recording.read = set()
    return _Recording


# The rows the routes need.

@pytest.fixture
def world(data, app):
    """One of each record a route names by id, a failed Stripe event and a logo, as `{path argument: value}`."""
    with data() as session:
        tenant = make_tenant(session, name="Bad Input ApS")
        subscription = make_subscription(session, tenant_id=tenant.id)
        user = User(id=new_id("usr"), tenant_id=tenant.id, email="someone@badinput.example", first_name="Some",
                    last_name="One", role="owner", email_confirmed=True)
        session.add(user)
        event = archive_event(session, id=new_id("evt"), stripe_created_at=datetime(2026, 3, 1, tzinfo=UTC),
                              type="invoice.paid", api_version="2025-03-31.basil", payload={"id": "x", "object": "event"},
                              payload_hash="c" * 64, status="failed", error="boom",
                              stripe_customer_id=subscription.stripe_customer_id)
        make_billing_event(session, subscription=subscription, stripe_event_id=event.id)
        tenant_id, user_id, event_id = tenant.id, user.id, event.id
    BlobStore(app.config["BLOB_DIR"]).put("logos/bad-input.png", PNG)
    BlobStore(app.config["BLOB_DIR"]).put("avatars/bad-input.png", PNG)
    return {"tenant_id": tenant_id, "user_id": user_id, "event_id": event_id, "card": "kpis",
            "name": "bad-input.png", "job_id": "job_missing"}


def counts(connection) -> tuple[int, int, int]:
    """The rows of the tables no refused request may write: audit log, Stripe archive, ledger."""
    return tuple(connection.scalar(select(func.count()).select_from(model))
                 for model in (OperatorAction, StripeEvent, BillingEvent))


# Building requests.

def encoded(value: str | Raw) -> str:
    return value.text if isinstance(value, Raw) else quote(value, safe="")


def query(pairs: list[tuple[str, str | Raw]]) -> str:
    return "&".join(f"{quote(name, safe='')}={encoded(value)}" for name, value in pairs)


def paths(app, rule_text: str, endpoint: str, world: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    """Each good path of the rule: every choice of an `any` argument, the fixture's id for every other."""
    rule = next(rule for rule in app.url_map.iter_rules() if rule.rule == rule_text and rule.endpoint == endpoint)
    choices: list[dict[str, str]] = [{}]
    for name in rule.arguments:
        converter = rule._converters[name]
        options = sorted(converter.items) if hasattr(converter, "items") else [world[name]]
        choices = [{**choice, name: option} for choice in choices for option in options]
    for arguments in choices:
        yield rule_text, arguments


def build_path(rule_text: str, arguments: dict[str, str | Raw]) -> str:
    """The rule with each `<converter:name>` replaced by its argument, percent-encoded unless Raw."""
    return re.sub(r"<([^>]+)>", lambda part: encoded(arguments[part.group(1).split(":")[-1]]), rule_text)


@dataclass
class Prober:
    """Sends one route's requests as an admin, and judges each answer."""

    client: object
    connection: object
    headers: dict[str, str]
    method: str
    failures: list[str]

    def __post_init__(self):
        self.before = counts(self.connection)

    def send(self, path: str, pairs: list[tuple[str, str | Raw]], hx: bool = False):
        headers = {**self.headers, **({"HX-Request": "true"} if hx else {})}
        if self.method == "GET":
            url = f"{path}?{query(pairs)}" if pairs else path
            return self.client.get(url, headers=headers)
        return self.client.post(path, data=query(pairs), headers=headers,
                                content_type="application/x-www-form-urlencoded")

    def probe(self, label: str, path: str, pairs: list[tuple[str, str | Raw]], hx: bool = False) -> None:
        """Send one request; note a failure unless it is answered well and, if refused, wrote nothing."""
        try:
            response = self.send(path, pairs, hx)
        except Exception as error:  # noqa: BLE001 (TESTING propagates a view's exception: that is the 500)
            self.failures.append(f"{label}: raised {type(error).__name__}: {str(error)[:200]}")
            return
        status = response.status_code
        refused = 400 <= status < 500
        if status >= 500:
            self.failures.append(f"{label}: {status} {response.get_data(as_text=True)[:200]}")
        elif refused:
            if not self._message(response):
                self.failures.append(f"{label}: {status} without a message")
        elif 300 <= status < 400:
            location = response.headers.get("Location", "")
            if not location.startswith("/") or location.startswith("//"):
                self.failures.append(f"{label}: {status} to {location!r}")
            refused = self._flashed_error()
        elif status not in (200, 204, 286, 304):
            self.failures.append(f"{label}: unexpected {status}")
        now = counts(self.connection)
        if refused and now != self.before:
            self.failures.append(f"{label}: refused with {status} yet wrote rows {self.before} → {now}")
        self.before = now

    def _message(self, response) -> str:
        if response.is_json:
            return str((response.get_json() or {}).get("error") or "")
        return response.get_data(as_text=True).strip()

    def _flashed_error(self) -> bool:
        """Whether the redirect carries an error for the operator (taking the flashes off the session)."""
        with self.client.session_transaction() as session:
            flashes = session.pop("_flashes", [])
        return any(category == "error" for category, _ in flashes)


def csrf_token(client, headers) -> str:
    page = client.get("/accounts", headers={**headers, "Accept": "text/html"}).get_data(as_text=True)
    return page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


@pytest.mark.parametrize("endpoint, method, rule", ROUTES, ids=[f"{m} {r}" for _, m, r in ROUTES])
def test_every_parameter_of_every_route_survives_bad_input(app, client, db_connection, admin_headers, settings,
                                                           recording, world, endpoint, method, rule):
    if endpoint in DEV_LOGIN_ENDPOINTS:
        settings(BACKOFFICE_DEV_LOGIN=True)
    headers = dict(admin_headers)
    good: list[tuple[str, str | Raw]] = []
    if method == "POST":
        headers["X-CSRFToken"] = csrf_token(client, admin_headers)
        good = [("reason", "checking bad input"), ("csrf_token", headers["X-CSRFToken"])]
    failures: list[str] = []
    prober = Prober(client, db_connection, headers, method, failures)
    for path_rule, arguments in paths(app, rule, endpoint, world):
        path = build_path(path_rule, arguments)
        # The good request, which also tells which parameters the route reads.
        recording.read = set()
        prober.probe(f"{method} {path} (good)", path, good)
        prober.probe(f"{method} {path} (good, htmx)", path, good, hx=True)
        read = sorted((recording.read | {name for name, _ in good}) - OUT_OF_SCOPE_PARAMETERS)
        for name in read:
            others = [(key, value) for key, value in good if key != name]
            classes = {**VALUES, **(CURSORS if name == "after" else {})}
            for label, value in classes.items():
                prober.probe(f"{method} {path} {name}={label}", path, [*others, (name, value)])
            prober.probe(f"{method} {path} {name} repeated", path, [*others, (name, "1"), (name, "zzz")])
            prober.probe(f"{method} {path} {name} repeated, bad first", path, [*others, (name, "\x00"), (name, "1")])
        for name in arguments:
            if name in OUT_OF_SCOPE_PATH_ARGUMENTS:
                continue
            for label, value in PATH_VALUES.items():
                bad_path = build_path(path_rule, {**arguments, name: value})
                prober.probe(f"{method} {bad_path[:80]} <{name}>={label}", bad_path, good)
    assert failures == [], f"{len(failures)} bad answers:\n" + "\n".join(failures[:60])


def test_every_path_argument_has_a_fixture_value(app, world):
    """A new route whose path names a record needs a row here; the probe above cannot reach it otherwise."""
    missing = {name for rule in app.url_map.iter_rules() if rule.endpoint not in SKIPPED_ENDPOINTS
               for name in rule.arguments
               if name not in world and not hasattr(rule._converters[name], "items")}
    assert missing == set()


# The answers the probe above only checks for "4xx with a message", with the message each one gives.

@pytest.mark.parametrize("url, message", [
    ("/accounts?q=%00x", "q contains a control character"),
    ("/users?q=a%1fb", "q contains a control character"),
    ("/audit?operator=%7f", "operator contains a control character"),
    ("/accounts/ten%00x", "tenant_id contains a control character"),
    ("/accounts?page=%C2%B2", "page must be a whole number"),
    ("/accounts?page=" + "1" * 31, "page must be a whole number"),
    ("/failed-events?page=" + "1" * 31, "page must be a whole number"),
    ("/accounts?page=-1", "page must be a whole number"),
    ("/accounts?sort=mrr&after=" + cursor(["zzz", "a", "ten_x"]), "The after cursor is not one this list made"),
    ("/billing-events?after=" + cursor([{"t": "2026-01-01T00:00:00+00:00"}] * 3), "after cursor"),
    ("/users?after=" + cursor([{"t": "2026-01-01T00:00:00"}, "a\x00", "usr_x"]), "after cursor"),
])
def test_bad_input_is_a_400_that_says_what_was_wrong(client, admin_headers, world, url, message):
    response = client.get(url, headers=admin_headers)
    assert response.status_code == 400 and message in response.get_json()["error"]


@pytest.mark.parametrize("name", ["a" * 256 + ".png", "../secret.png", "..", "a/../../b.png"])
def test_blob_names_that_are_no_key_are_not_found(app, name):
    assert BlobStore(app.config["BLOB_DIR"]).get(f"logos/{name}") is None


def test_a_blob_name_of_255_characters_is_still_a_name(app):
    store, name = BlobStore(app.config["BLOB_DIR"]), "a" * 251 + ".png"
    store.put(f"logos/{name}", PNG)
    assert store.get(f"logos/{name}") == PNG


def test_cursor_values_must_have_their_keys_types():
    from backoffice.paging import BadCursor, SortKey, decode_cursor, encode_cursor

    keys = [SortKey(BillingEvent.__table__.c.occurred_at), SortKey(BillingEvent.__table__.c.position),
            SortKey(BillingEvent.__table__.c.amount_delta), SortKey(BillingEvent.__table__.c.id)]
    good = [datetime(2026, 3, 1, tzinfo=UTC), 3, Decimal("-49.00"), "bilevt_1"]
    assert decode_cursor(encode_cursor(good), keys) == good
    assert decode_cursor(encode_cursor([None, None, None, None]), keys) == [None] * 4
    for bad in (["x", 3, Decimal(1), "b"], [good[0], True, Decimal(1), "b"], [good[0], 2**63, Decimal(1), "b"],
                [good[0], 3, Decimal("NaN"), "b"], [good[0], 3, 5, "b"], [good[0], 3, Decimal(1), "a\x00b"],
                [good[0], 3, Decimal(1), 7], [good[0].date(), 3, Decimal(1), "b"]):
        with pytest.raises(BadCursor):
            decode_cursor(encode_cursor(bad), keys)


# Audit reasons: capped, with the limit told to the operator; the domain's writer refuses a longer one too.

def test_an_overlong_reason_is_sent_back_with_the_limit_and_nothing_is_written(client, admin_headers, world,
                                                                                 db_connection):
    from backoffice.operators.models import MAX_REASON_LENGTH

    headers = {**admin_headers, "X-CSRFToken": csrf_token(client, admin_headers)}
    url = f"/accounts/{world['tenant_id']}/replay"
    before = counts(db_connection)
    response = client.post(url, headers=headers, data={"reason": "x" * (MAX_REASON_LENGTH + 1)})
    assert response.status_code == 303
    with client.session_transaction() as session:
        flashes = session.pop("_flashes", [])
    assert flashes == [("error", "The reason has 1001 characters; the audit log keeps at most 1000. Shorten it and "
                                 "try again.")]
    assert counts(db_connection) == before
    # At the limit (spaces around it are trimmed, as the log stores it) the action goes ahead and is audited.
    assert client.post(url, headers=headers, data={"reason": " " + "y" * MAX_REASON_LENGTH + " "}).status_code == 303
    reasons = db_connection.scalars(select(OperatorAction.reason)).all()
    assert reasons == ["y" * MAX_REASON_LENGTH]


def test_the_audit_writer_refuses_an_overlong_reason(db_session, world):
    from backoffice.operators.audit import record_action
    from backoffice.operators.models import MAX_REASON_LENGTH, Operator

    db_session.add(Operator(id="op_reason", name="reason@example.com"))
    with pytest.raises(ValueError, match="at most 1000"):
        record_action(db_session, "op_reason", "replay", "z" * (MAX_REASON_LENGTH + 1), tenant_id=world["tenant_id"])
    assert record_action(db_session, "op_reason", "replay", "z" * MAX_REASON_LENGTH).reason == "z" * MAX_REASON_LENGTH


@pytest.mark.parametrize("cutoff", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "1969-12-31T23:59:59",
                                    "2026-13-01T00:00:00", ""])
def test_a_recovery_cutoff_out_of_range_is_sent_back(client, admin_headers, world, db_connection, cutoff):
    headers = {**admin_headers, "X-CSRFToken": csrf_token(client, admin_headers)}
    before = counts(db_connection)
    response = client.post(f"/accounts/{world['tenant_id']}/recovery", headers=headers,
                           data={"reason": "restore", "cutoff": cutoff})
    assert response.status_code == 303
    with client.session_transaction() as session:
        flashes = session.pop("_flashes", [])
    assert flashes == [("error", "The cutoff must be a date and time in UTC, such as 2026-01-31T12:00:00.")]
    assert counts(db_connection) == before


# Signed webhooks whose body the archive cannot hold: 400 with the reason, nothing stored (never a 500, which
# Stripe would retry for days).

WEBHOOK_SECRET = "whsec_bad_input"


@pytest.fixture
def signed(client, settings):
    from tests.web.test_stripe_webhook import sign

    settings(STRIPE_WEBHOOK_SECRETS=(WEBHOOK_SECRET,))

    def post(payload: bytes):
        return client.post("/webhooks/stripe", data=payload, headers={
            "Content-Type": "application/json", "Stripe-Signature": sign(payload, WEBHOOK_SECRET)})
    return post


def event_body(**changes) -> dict:
    body = {"id": new_id("evt"), "object": "event", "type": "customer.updated", "created": 1767225600,
            "api_version": "2025-03-31.basil", "data": {"object": {"id": "cus_bad_input", "object": "customer"}}}
    return {**body, **changes}


def raw(event: dict) -> bytes:
    return json.dumps(event).encode()


def nested(levels: int) -> bytes:
    return raw(event_body()).replace(b'"cus_bad_input"', b"[" * levels + b"1" + b"]" * levels)


@pytest.mark.parametrize("payload, reason", [
    (raw(event_body(data={"object": {"id": "cus_x", "object": "customer", "name": "a\x00b"}})), "NUL character"),
    (raw(event_body(data={"object": {"id": "cus_x", "object": "customer", "metadata": {"k\x00": "v"}}})),
     "NUL character"),
    (raw(event_body()).replace(b'"customer.updated"', b'"customer.updated\\ud800"'), "lone surrogate"),
    (raw(event_body(created=-1)), "out of range"),
    (raw(event_body(created=0)), "out of range"),
    (raw(event_body(created=10**20)), "out of range"),
    (raw(event_body(created="1767225600")), "created time"),
    (raw(event_body(created=True)), "created time"),
    (raw(event_body(created=1767225600.5)), "created time"),
    (nested(10_000), "nested too deeply"),
    (nested(100), "nested too deeply"),
    (raw(event_body()).replace(b"1767225600", b"1767225600, \"x\": NaN"), "not JSON"),
    (raw(event_body()).replace(b"1767225600", b"1767225600, \"x\": 1e400"), "not JSON"),
])
def test_signed_bodies_the_archive_cannot_hold_are_400_with_the_reason(signed, db_connection, payload, reason):
    before = counts(db_connection)
    response = signed(payload)
    assert response.status_code == 400 and reason in response.get_json()["error"]
    assert counts(db_connection) == before


def test_signed_bodies_near_those_edges_are_archived(signed, db_connection):
    """An escaped backslash before u0000 is text, a surrogate pair is one character, 60 levels are Stripe-like."""
    for payload in (raw(event_body(data={"object": {"id": "cus_x", "object": "customer", "name": "a\\u0000 😀"}})),
                    raw(event_body()).replace(b'"customer.updated"', b'"customer.updated \\ud83d\\ude00"'),
                    nested(60)):
        response = signed(payload)
        assert response.status_code == 200, response.get_json()
    assert counts(db_connection)[1] == 3

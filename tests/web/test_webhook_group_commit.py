"""The webhook as production runs it: on an engine, concurrent deliveries archived in shared transactions by the
group-commit writer, each answered after its commit, and the replays requested by a thread of their own.

On a scratch database of its own (cloned from the migrated template), because what it commits stays: the
archive is append-only, and pending events left in the run database would be other tests' pending events.
"""
from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from redis import Redis
from sqlalchemy import func, select

from backoffice.billing.intake import replay_requests
from backoffice.billing.models import StripeEvent, StripeEventDivergence, StripeEventState
from backoffice.billing.replay.tasks import replay_key
from backoffice.extensions import db
from backoffice.jobs import marker_state
from tests import pg
from tests.conftest import _migrate
from tests.web.test_stripe_webhook import SECRET, sign

THREADS = 12


@pytest.fixture(scope="module")
def scratch_url(pg_server):
    template = pg.ensure_template(pg_server, _migrate)
    name = pg.create_run_database(pg_server, template, "groupcommit")
    yield pg.app_url(pg_server, name)
    pg.drop_database(pg_server, name)


@pytest.fixture
def production_app(make_app, scratch_url, redis_url):
    return make_app(SQLALCHEMY_DATABASE_URI=scratch_url, STRIPE_WEBHOOK_SECRETS=(SECRET,), REDIS_URL=redis_url)


def event(event_id: str, customer: str, note: str = "") -> bytes:
    return json.dumps({"id": event_id, "object": "event", "type": "customer.updated", "created": int(time.time()),
                       "api_version": "2025-03-31.basil",
                       "data": {"object": {"object": "customer", "id": customer, "description": note}}}).encode()


def post_all(app, bodies: list[bytes]) -> list[tuple[int, dict]]:
    """Every body posted at once, THREADS at a time, each thread with its own client (as gunicorn's threads)."""
    answers: list[tuple[int, dict] | None] = [None] * len(bodies)
    start = threading.Barrier(THREADS)

    def send(offset: int) -> None:
        client = app.test_client()
        start.wait()
        for index in range(offset, len(bodies), THREADS):
            response = client.post("/webhooks/stripe", data=bodies[index],
                                   headers={"Stripe-Signature": sign(bodies[index])})
            answers[index] = (response.status_code, response.get_json())

    threads = [threading.Thread(target=send, args=(offset,)) for offset in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers  # type: ignore[return-value]


def test_a_burst_is_archived_once_per_event_in_fewer_transactions_than_deliveries(production_app, redis_url):
    run = uuid.uuid4().hex[:8]
    unique = [event(f"evt_gc_{run}_{n}", f"cus_gc_{run}_{n % 5}") for n in range(120)]
    resent = unique[::5]  # 20 % exact re-sends, arriving while their originals may still be in flight
    changed = [event(f"evt_gc_{run}_{n}", f"cus_gc_{run}_{n % 5}", note="other body") for n in (1, 2)]
    answers = post_all(production_app, unique + resent + changed)

    assert [status for status, _ in answers] == [200] * len(answers)
    outcomes = {}
    for body, (_, answer) in zip(unique + resent + changed, answers, strict=True):
        outcomes.setdefault(json.loads(body)["id"], []).append(answer["outcome"])
    # Each event stored by exactly one of its deliveries, whichever came first; the others knew it was there.
    assert all(kinds.count("stored") == 1 for kinds in outcomes.values())
    assert sorted(kind for kinds in outcomes.values() for kind in kinds if kind != "stored") == \
        ["divergent"] * 2 + ["duplicate"] * len(resent)

    archiver = next(iter(production_app.wsgi_app._archivers.values()))
    with production_app.app_context():
        ids = db.session.scalars(select(StripeEvent.id).where(StripeEvent.id.like(f"evt_gc_{run}_%"))).all()
        kept_aside = db.session.scalar(select(func.count()).select_from(StripeEventDivergence)
                                       .where(StripeEventDivergence.stripe_event_id.like(f"evt_gc_{run}_%")))
        stored_bodies = dict(db.session.execute(select(StripeEvent.id, StripeEvent.payload)
                                                .where(StripeEvent.id.like(f"evt_gc_{run}_%"))).all())
    assert sorted(ids) == sorted(json.loads(body)["id"] for body in unique) and kept_aside == 2
    assert stored_bodies[f"evt_gc_{run}_7"] == json.loads(unique[7])  # the body as sent, parsed by jsonb
    # Twelve senders at once: transactions were shared (each delivery still waited for its own commit).
    assert archiver.batches < len(unique)

    # The replays were asked for off the request: the customers recorded in one set, one drain job queued; the
    # drain (a worker's job, run here) queues one replay job per customer.
    customers = {f"cus_gc_{run}_{n}".encode() for n in range(5)}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Redis.from_url(redis_url).smembers(replay_requests.REQUESTED) != customers:
        time.sleep(0.05)
    assert Redis.from_url(redis_url).smembers(replay_requests.REQUESTED) == customers
    with production_app.app_context():
        assert marker_state(replay_requests.DRAIN)  # names the queued drain job
        assert not any(marker_state(replay_key(customer.decode())) for customer in customers)
        assert replay_requests.drain() == {"customers": 5, "queued": 5}
        assert all(marker_state(replay_key(customer.decode())) for customer in customers)
    assert not Redis.from_url(redis_url).exists(replay_requests.REQUESTED)


def test_redis_away_costs_the_acknowledgement_nothing(make_app, scratch_url):
    """No Redis at the address: every delivery still 200 and archived pending (the sweeper queues it later)."""
    app = make_app(SQLALCHEMY_DATABASE_URI=scratch_url, STRIPE_WEBHOOK_SECRETS=(SECRET,),
                   REDIS_URL="redis://127.0.0.1:1/0")
    run = uuid.uuid4().hex[:8]
    bodies = [event(f"evt_gc_noredis_{run}_{n}", f"cus_gc_noredis_{run}") for n in range(24)]
    started = time.perf_counter()
    answers = post_all(app, bodies)
    elapsed = time.perf_counter() - started
    assert [answer["outcome"] for _, answer in answers] == ["stored"] * len(bodies)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(StripeEventState).where(
            StripeEventState.stripe_event_id.like(f"evt_gc_noredis_{run}_%"),
            StripeEventState.status == "pending")) == len(bodies)
    print(f"24 deliveries with Redis away: {elapsed * 1000:.0f} ms")


def test_the_webhook_path_answers_other_methods_405_and_leaves_the_rest_to_flask(production_app, redis_url):
    client = production_app.test_client()
    refused = client.get("/webhooks/stripe")
    assert refused.status_code == 405 and refused.headers["Allow"] == "POST"
    assert refused.headers["Cache-Control"] == "no-store" and refused.get_json()["error"]
    assert client.get("/healthz").status_code == 200
    assert Redis.from_url(redis_url).ping()

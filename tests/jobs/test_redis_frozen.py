"""Redis slow or frozen (issue 18): no request waits on it longer than one socket timeout, and nothing is lost.

A throwaway redis-server is frozen with SIGSTOP, as a hung Redis looks to its clients: connections open, replies
never come. The webhook still answers 200 at once (archived, pending), and once Redis is thawed the pending sweeper
queues the replay and a worker settles the event.
"""
import json
import time

import pytest
from redis import Redis
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue
from sqlalchemy import select

from backoffice.billing.models import StripeEventState
from backoffice.billing.replay.tasks import replay_key, request_replay, sweep_pending
from backoffice.jobs import CLAIMING_TTL_MS, RedisUnavailable, circuit_for, marker_state
from backoffice.workers.rq_worker import build_worker_class
from tests.web.test_stripe_webhook import SECRET, sign

# What a frozen Redis may add to a request: one socket timeout (REDIS_SOCKET_TIMEOUT, 50 ms) and a margin. The rest
# of a request is measured in the same test with Redis answering, so that a loaded machine slows both alike;
# a client that waited twice, retried or blocked would exceed this at once.
ONE_TIMEOUT_SECONDS = 0.050 + 0.025
# A bare call to Redis, no request around it: less than twice its timeout (redis-py's own retries would be more).
CALL_BUDGET_SECONDS = 0.100


def event(number, prefix="frozen"):
    return {"id": f"evt_{prefix}_{number}", "object": "event", "type": "customer.updated", "created": int(time.time()),
            "api_version": "2025-03-31.basil",
            "data": {"object": {"object": "customer", "id": f"cus_{prefix}_{number % 7}"}}}


def answering(client):
    """The slowest of ten webhooks while Redis answers: what a request costs without waiting on Redis."""
    timings = []
    for number in range(10):
        response, elapsed = post(client, event(number, "answering"))
        assert response.status_code == 200
        timings.append(elapsed)
    return max(timings)


def post(client, body):
    payload = json.dumps(body).encode()
    started = time.perf_counter()
    response = client.post("/webhooks/stripe", data=payload,
                           headers={"Stripe-Signature": sign(payload), "Content-Type": "application/json"})
    return response, time.perf_counter() - started


def statuses(app):
    from backoffice.extensions import db

    with app.app_context():
        return dict(db.session.execute(select(StripeEventState.stripe_event_id, StripeEventState.status)
                                       .where(StripeEventState.stripe_event_id.startswith("evt_frozen_"))).all())


def test_webhooks_wait_at_most_one_timeout_while_redis_is_frozen_and_the_sweeper_replays_them(
        app, client, db_connection, redis_server, settings):
    settings(REDIS_URL=redis_server.url, STRIPE_WEBHOOK_SECRETS=(SECRET,), REDIS_CIRCUIT_SECONDS=0.5)
    warm, _ = post(client, event(0))  # connections made and the circuit closed, as in a running server
    assert warm.status_code == 200
    budget = answering(client) + ONE_TIMEOUT_SECONDS
    redis_server.freeze()
    try:
        timings = []
        for number in range(1, 41):
            response, elapsed = post(client, event(number))
            assert response.status_code == 200, response.get_data(as_text=True)
            assert response.get_json()["outcome"] == "stored"
            timings.append(elapsed)
            time.sleep(0.02)  # spread over more than one circuit pause, so probes are measured too
    finally:
        redis_server.thaw()
    timings.sort()
    print(f"webhook with Redis frozen: n={len(timings)} p50={timings[len(timings) // 2] * 1000:.1f} ms "
          f"max={timings[-1] * 1000:.1f} ms (budget {budget * 1000:.1f} ms)")
    assert timings[-1] < budget, (budget, timings)
    archived = statuses(app)
    assert len(archived) == 41 and sum(status == "pending" for status in archived.values()) >= 40

    # The circuit's pause is over: the next caller probes Redis, finds it back, and closes it. The commands the
    # frozen Redis had buffered ran when it was thawed; the claims they left expire within CLAIMING_TTL_MS.
    time.sleep(CLAIMING_TTL_MS / 1000 + 0.1)
    with app.app_context():
        # One replay per customer the archive says is pending (cus_frozen_0's, queued before the freeze, is live
        # unless that first call met a slow Redis too).
        assert sweep_pending(older_than=0)["queued"] in (6, 7)
        assert all(marker_state(replay_key(f"cus_frozen_{number}")) for number in range(7))
        connection = Redis.from_url(redis_server.url)
        worker = build_worker_class(app)([Queue("default", connection=connection)], connection=connection)
        worker.work(burst=True, with_scheduler=False)  # the production worker class, in this process
    assert "pending" not in statuses(app).values()


def test_the_circuit_fails_at_once_after_a_timeout_and_probes_again_after_its_pause(
        app, db_connection, redis_server, settings):
    settings(REDIS_URL=redis_server.url, REDIS_CIRCUIT_SECONDS=0.5)
    with app.app_context():
        assert request_replay("cus_circuit")  # Redis answers
        redis_server.freeze()
        try:
            started = time.perf_counter()
            with pytest.raises(RedisTimeoutError):
                request_replay("cus_circuit_2")
            first = time.perf_counter() - started
            started = time.perf_counter()
            with pytest.raises(RedisUnavailable):
                request_replay("cus_circuit_3")
            skipped = time.perf_counter() - started
            assert circuit_for(redis_server.url, 0.5).is_open
            time.sleep(0.55)
            started = time.perf_counter()
            with pytest.raises(RedisTimeoutError):  # the one probe after the pause waits its timeout once more
                request_replay("cus_circuit_4")
            probe = time.perf_counter() - started
        finally:
            redis_server.thaw()
        time.sleep(CLAIMING_TTL_MS / 1000 + 0.1)
        assert request_replay("cus_circuit_5")  # Redis back: the probe succeeds and the circuit closes
        assert not circuit_for(redis_server.url, 0.5).is_open
    print(f"first timeout {first * 1000:.1f} ms, skipped {skipped * 1000:.2f} ms, probe {probe * 1000:.1f} ms")
    assert first < CALL_BUDGET_SECONDS and probe < CALL_BUDGET_SECONDS
    assert skipped < 0.020  # well under one timeout: the open circuit asks nothing of Redis


def test_the_stripe_budget_in_redis_waits_no_longer_than_the_request_path_timeout(redis_server):
    from backoffice.stripe_gateway.factory import shared_bucket

    bucket = shared_bucket("sk_test_frozen", 25, redis_server.url, 0.05)
    assert bucket.acquire() == 0  # Redis answers
    redis_server.freeze()
    try:
        started = time.perf_counter()
        with pytest.raises(RedisTimeoutError):
            bucket.acquire()
        elapsed = time.perf_counter() - started
    finally:
        redis_server.thaw()
    assert elapsed < CALL_BUDGET_SECONDS  # redis-py's default would retry three times with backoff


def test_a_page_that_needs_the_frozen_queue_answers_503_at_once(client, redis_server, settings, admin_headers):
    """Following a Sync asks Redis for the job: with Redis frozen it is a 503 that says so, in ~the timeout."""
    settings(REDIS_URL=redis_server.url, REDIS_CIRCUIT_SECONDS=0.5)
    url = "/accounts/ten_any/sync/" + "0" * 32
    redis_server.freeze()
    try:
        for accept in ("text/html", "application/json"):
            started = time.monotonic()
            response = client.get(url, headers={**admin_headers, "Accept": accept})
            elapsed = time.monotonic() - started
            assert response.status_code == 503, response.get_data(as_text=True)
            assert response.headers["Retry-After"] == "10"
            assert "job queue cannot be reached" in response.get_data(as_text=True)
            assert elapsed < 1.0, elapsed
    finally:
        redis_server.thaw()

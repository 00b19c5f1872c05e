"""Queued-replay markers are tied to their job (issue 18): a marker whose job is lost never blocks its customer.

A worker killed before its replay job claimed the marker leaves `backoffice:queued:replay:<cus>` naming a job that
is gone (or started, with no pulse beating any more). The webhook, the pending sweeper and the admin's Replay
button each queue a fresh job at once; a live queued job still keeps the customer to one.
"""
import json
import time

import pytest
from redis import Redis
from rq.job import Job

from backoffice.billing.replay.tasks import replay_key, request_replay, sweep_pending
from backoffice.jobs import ONCE_PREFIX, PULSE_PREFIX, PULSE_TTL_MS, clear_stale_markers, marker_state
from tests.factories import make_subscription
from tests.web.test_stripe_webhook import SECRET, sign


@pytest.fixture
def rq(app, redis_url, settings):
    settings(REDIS_URL=redis_url)
    return Redis.from_url(redis_url)


def marker(rq, customer):
    value = rq.get(ONCE_PREFIX + replay_key(customer))
    return value.decode() if value else None


def lose_job(rq, job_id):
    """What a worker SIGKILLed before its job claimed the marker leaves: the marker, naming a job that is gone."""
    Job.fetch(job_id, connection=rq).delete()


def event(customer, number=1):
    return {"id": f"evt_{customer}_{number}", "object": "event", "type": "customer.updated", "created": int(time.time()),
            "api_version": "2025-03-31.basil", "data": {"object": {"object": "customer", "id": customer}}}


def post(client, body):
    payload = json.dumps(body).encode()
    return client.post("/webhooks/stripe", data=payload,
                       headers={"Stripe-Signature": sign(payload), "Content-Type": "application/json"})


def test_a_live_queued_job_keeps_the_customer_to_one(app, db_connection, rq):
    with app.app_context():
        assert request_replay("cus_live")
        first = marker(rq, "cus_live")
        assert Job.fetch(first, connection=rq).get_status() == "queued"
        assert not request_replay("cus_live")
        assert marker(rq, "cus_live") == first and marker_state(replay_key("cus_live")) == first
        assert rq.llen("rq:queue:default") == 1


def test_a_marker_whose_job_was_lost_is_replaced_at_once(app, db_connection, rq):
    with app.app_context():
        assert request_replay("cus_lost")
        lost = marker(rq, "cus_lost")
        lose_job(rq, lost)
        assert marker_state(replay_key("cus_lost")) is None
        assert request_replay("cus_lost")
        fresh = marker(rq, "cus_lost")
    assert fresh != lost and Job.fetch(fresh, connection=rq).get_status() == "queued"


def test_a_started_job_blocks_only_while_its_pulse_beats(app, db_connection, rq):
    with app.app_context():
        assert request_replay("cus_started")
        orphan = marker(rq, "cus_started")
        # RQ set the job started, then its worker was SIGKILLed before the job claimed its marker. RQ still lists
        # the worker (its key outlives it by the job's timeout + 60 s); only the job's pulse stopped.
        rq.hset(Job.key_for(orphan), mapping={"status": "started", "worker_name": "killed-worker"})
        rq.set("rq:worker:killed-worker", "1", ex=660)
        assert marker_state(replay_key("cus_started")) is None
        assert request_replay("cus_started")
        assert marker(rq, "cus_started") != orphan
        # A started job whose pulse beats is live: the job claims its marker in a moment.
        alive = marker(rq, "cus_started")
        rq.hset(Job.key_for(alive), mapping={"status": "started", "worker_name": "busy-worker"})
        rq.set(PULSE_PREFIX + alive, 1, px=PULSE_TTL_MS)
        assert not request_replay("cus_started")
        assert marker_state(replay_key("cus_started")) == alive
        assert clear_stale_markers("replay:") == 0


def test_a_job_taken_off_its_queue_by_a_worker_killed_before_starting_it_does_not_block(app, db_connection, rq):
    with app.app_context():
        assert request_replay("cus_taken")
        taken = marker(rq, "cus_taken")
        # The worker moved the job to its intermediate list, then died before RQ marked it started: the job's hash
        # still says queued, and it stays so until a later worker's maintenance fails it.
        rq.lmove("rq:queue:default", "rq:queue:default:intermediate")
        assert Job.fetch(taken, connection=rq).get_status() == "queued"
        assert marker_state(replay_key("cus_taken")) is None
        assert clear_stale_markers("replay:") == 1
        assert request_replay("cus_taken")
        fresh = marker(rq, "cus_taken")
        assert fresh != taken and rq.lrange("rq:queue:default", 0, -1) == [fresh.encode()]
        assert not request_replay("cus_taken")  # the fresh job is on its queue: live


def test_the_webhook_queues_a_fresh_job_past_a_lost_one(app, client, db_connection, rq, settings):
    settings(STRIPE_WEBHOOK_SECRETS=(SECRET,))
    assert post(client, event("cus_hook", 1)).status_code == 200
    lost = marker(rq, "cus_hook")
    lose_job(rq, lost)
    assert post(client, event("cus_hook", 2)).status_code == 200
    fresh = marker(rq, "cus_hook")
    assert fresh != lost and Job.fetch(fresh, connection=rq).get_status() == "queued"


def test_the_sweeper_queues_past_lost_jobs_and_clears_stale_markers(app, client, db_connection, rq, settings):
    settings(STRIPE_WEBHOOK_SECRETS=(SECRET,))
    assert post(client, event("cus_swept")).status_code == 200
    lose_job(rq, marker(rq, "cus_swept"))
    with app.app_context():
        # A customer with nothing pending whose marker outlived its job: cleared, not replayed.
        assert request_replay("cus_idle")
        lose_job(rq, marker(rq, "cus_idle"))
        result = sweep_pending(older_than=0)
    assert result == {"queued": 1, "stale_markers": 2}
    assert Job.fetch(marker(rq, "cus_swept"), connection=rq).get_status() == "queued"
    assert marker(rq, "cus_idle") is None


def test_clearing_leaves_live_markers_alone(app, db_connection, rq):
    with app.app_context():
        request_replay("cus_a")
        request_replay("cus_b")
        lose_job(rq, marker(rq, "cus_b"))
        assert clear_stale_markers("replay:") == 1
        assert marker(rq, "cus_a") is not None and marker(rq, "cus_b") is None


def test_the_replay_button_says_what_the_queue_holds(app, client, data, db_connection, rq, admin_headers):
    with data() as session:
        subscription = make_subscription(session)
        tenant, customer = subscription.tenant_id, subscription.stripe_customer_id
    url = f"/accounts/{tenant}"
    page = client.get(url, headers=admin_headers).get_data(as_text=True)
    token = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    headers = {**admin_headers, "X-CSRFToken": token}

    def replay():
        client.post(f"{url}/replay", headers=headers, data={"reason": "ledger looks stale"})
        return client.get(url, headers=admin_headers).get_data(as_text=True)

    assert "Replay queued" in replay()
    queued = marker(rq, customer)
    assert "already queued" in replay() and marker(rq, customer) == queued
    lose_job(rq, queued)
    assert "Replay queued" in replay()  # the lost job is not reported as queued: a new one is
    assert marker(rq, customer) != queued and Job.fetch(marker(rq, customer), connection=rq).get_status() == "queued"


def test_the_replay_button_says_when_the_queue_cannot_be_reached(app, client, data, db_connection, settings,
                                                                  admin_headers):
    from tests.throwaway_servers import free_port

    settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")  # nothing listens there
    with data() as session:
        tenant = make_subscription(session).tenant_id
    url = f"/accounts/{tenant}"
    page = client.get(url, headers=admin_headers).get_data(as_text=True)
    token = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    client.post(f"{url}/replay", headers={**admin_headers, "X-CSRFToken": token}, data={"reason": "stale"})
    assert "cannot be reached" in client.get(url, headers=admin_headers).get_data(as_text=True)

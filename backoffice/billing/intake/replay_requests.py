"""The replays archived events ask for: recorded by the intake as cheaply as Redis allows, queued by a worker.

Queuing a customer's replay means a marker that keeps it to one job and an RQ job: several round trips and the
job's own writing, per customer. A burst of Stripe's deliveries names thousands of customers; the intake only
adds them to one Redis set (one command for all the customers of a batch) and makes sure one drain job is
queued. The drain job, on a worker, queues each customer's replay (`request_replay`, once per customer however
many of its events arrived). Without Redis, jobs run in-process and each replay is requested directly.

Nothing depends on this path for correctness: the archive is the truth of what is pending, and the pending
sweeper queues the replay of any event that waited too long, should a record or a drain be lost.
"""
from __future__ import annotations

from collections.abc import Iterable

from flask import current_app

from backoffice.billing.replay.tasks import request_replay
from backoffice.jobs import claim_once, enqueue_once, redis_client

REQUESTED = "backoffice:replay-requested"  # the set of customers whose replay is asked for
DRAIN = "replay:drain"
PLATFORM = ""  # in the set: the events that belong to no customer
DRAIN_CHUNK = 500
# Off the request path, a reply may take longer than a page may wait (REDIS_SOCKET_TIMEOUT): under a burst the
# recording thread shares its process with busy request threads, and a tight timeout would open the circuit.
RECORD_TIMEOUT = 1.0


def record(customers: Iterable[str | None]) -> None:
    """Ask for the replay of these customers (None: the platform's events). RedisError when Redis is away."""
    wanted = {PLATFORM if customer is None else customer for customer in customers}
    if not wanted:
        return
    if not current_app.config["REDIS_URL"]:
        for customer in sorted(wanted):
            request_replay(customer or None)
        return
    with redis_client(timeout=RECORD_TIMEOUT) as connection:
        connection.sadd(REQUESTED, *wanted)
    enqueue_once(DRAIN, drain, queue="high", redis_timeout=RECORD_TIMEOUT)


def drain() -> dict[str, int]:
    """Queue the replay of every customer in the set (a worker's job): taken a chunk at a time, each once."""
    claim_once(DRAIN)
    customers = queued = 0
    while True:
        with redis_client() as connection:
            chunk = connection.spop(REQUESTED, DRAIN_CHUNK)
        if not chunk:
            return {"customers": customers, "queued": queued}
        for customer in chunk:
            customers += 1
            queued += request_replay(customer.decode() or None)

"""The replays that archived webhook events ask for, recorded by a thread of their own, never by the request.

Even one Redis command costs a round trip, and Redis slow or frozen costs up to its socket timeout: neither may
hold up Stripe's acknowledgement. The intake hands the customers of what it stored to this thread and answers
at once; the thread records all the customers gathered meanwhile in one go (billing/intake/replay_requests.py).
Should Redis be down, the events stay pending in the archive, which is the truth of what is pending, and the
pending sweeper queues them once it is back (billing/replay/tasks.py).
"""
from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence

from flask import Flask
from redis.exceptions import RedisError

from backoffice.billing.intake import replay_requests
from backoffice.billing.intake.webhook import Envelope

log = logging.getLogger(__name__)


class ReplayRequests:
    """A set of customers waiting for their replay to be queued, and the thread that queues them."""

    def __init__(self, app: Flask):
        self.app = app
        self._waiting: set[str | None] = set()
        self._ready = threading.Condition()
        self._owner: int | None = None
        self.failing = False  # the last record found Redis unavailable

    def request(self, stored: Sequence[Envelope]) -> None:
        """Ask for the replay of each stored event's customer (None: the platform's events); returns at once."""
        self._start()
        with self._ready:
            self._waiting.update(envelope.customer_id for envelope in stored)
            self._ready.notify()

    def _start(self) -> None:
        if self._owner == os.getpid():
            return
        with self._ready:
            if self._owner != os.getpid():
                threading.Thread(target=self._queue_forever, name="webhook-replay-requests", daemon=True).start()
                self._owner = os.getpid()

    def _take(self) -> set[str | None]:
        with self._ready:
            while not self._waiting:
                self._ready.wait()
            taken, self._waiting = self._waiting, set()
        return taken

    def _queue_forever(self) -> None:
        with self.app.app_context():
            while True:
                customers = self._take()
                try:
                    replay_requests.record(customers)
                except RedisError as error:
                    # Once per outage, not once per batch: a burst during an outage would otherwise flood the log.
                    if not self.failing:
                        log.warning("replays not requested while Redis is unavailable (the pending sweeper queues "
                                    "them once it is back): %s", type(error).__name__)
                    self.failing = True
                    continue
                except Exception:
                    log.exception("replay of %d customers not requested", len(customers))
                    continue
                if self.failing:
                    log.info("Redis answers again: replays requested as events arrive")
                self.failing = False

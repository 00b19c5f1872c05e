"""Group commit for the webhook intake: deliveries that arrive together are archived in one transaction.

Each delivery waits for the commit of the transaction that holds it, so nothing is acknowledged before it is
durable; what is shared is the round trips and the commit's WAL flush, which cost more than the rows. One writer
thread per process takes whatever has queued while it was busy (so a lone delivery waits for nobody, and a burst
is written in batches that grow with the load), on a connection it keeps.

Plain Python: the web layer hands in the engine and what to do with the customers of stored events.
"""
from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from backoffice.billing.intake.webhook import Envelope, Outcome, archive_many

log = logging.getLogger(__name__)
MAX_BATCH = 128


class ArchiveTimeout(TimeoutError):
    """The delivery's transaction did not finish in time: not acknowledged, so Stripe sends it again."""


@dataclass
class _Delivery:
    envelope: Envelope
    raw: bytes
    done: threading.Event = field(default_factory=threading.Event)
    outcome: Outcome | None = None
    error: BaseException | None = None


class GroupArchiver:
    """Archive deliveries through one writer thread, a batch per transaction; `archive` returns once committed."""

    def __init__(self, engine: Engine, on_stored: Callable[[Sequence[Envelope]], None], *,
                 max_batch: int = MAX_BATCH):
        self.engine = engine
        self.on_stored = on_stored
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[_Delivery] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._owner: int | None = None  # the process whose writer thread runs (a forked worker starts its own)
        self.batches = 0

    def archive(self, envelope: Envelope, raw: bytes, timeout: float) -> Outcome:
        delivery = _Delivery(envelope, raw)
        self._start()
        self._queue.put(delivery)
        if not delivery.done.wait(timeout):
            raise ArchiveTimeout(f"not committed within {timeout:.0f} s")
        if delivery.error is not None:
            raise delivery.error
        assert delivery.outcome is not None
        return delivery.outcome

    def _start(self) -> None:
        if self._owner == os.getpid():
            return
        with self._lock:
            if self._owner != os.getpid():
                self._queue = queue.SimpleQueue()  # a queue inherited through fork has no writer behind it
                threading.Thread(target=self._write_forever, name="webhook-group-commit", daemon=True).start()
                self._owner = os.getpid()

    def _next_batch(self) -> list[_Delivery]:
        batch = [self._queue.get()]
        while len(batch) < self.max_batch:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write_forever(self) -> None:
        connection: Connection | None = None
        while True:
            batch = self._next_batch()
            try:
                connection, outcomes = self._write(connection, batch)
            except BaseException as error:  # every waiting delivery hears of it; the writer goes on
                connection = _discard(connection)
                for delivery in batch:
                    delivery.error = error
                    delivery.done.set()
                continue
            self.batches += 1
            for delivery, outcome in zip(batch, outcomes, strict=True):
                delivery.outcome = outcome
                delivery.done.set()
            stored = [delivery.envelope for delivery, outcome in zip(batch, outcomes, strict=True)
                      if outcome is Outcome.STORED]
            if stored:
                try:
                    self.on_stored(stored)
                except Exception:  # archived and acknowledged: the pending sweeper queues what this missed
                    log.exception("replay requests for %d archived events failed", len(stored))

    def _write(self, connection: Connection | None, batch: list[_Delivery]) -> tuple[Connection, list[Outcome]]:
        """One transaction for the batch; a kept connection the server dropped is replaced once, then it fails."""
        deliveries = [(delivery.envelope, delivery.raw) for delivery in batch]
        for attempt in (1, 2):
            fresh = connection is None
            if connection is None:
                connection = self.engine.connect()
            try:
                with connection.begin():
                    return connection, archive_many(connection, deliveries)
            except DBAPIError as error:
                connection = _discard(connection)
                if fresh or attempt == 2 or not error.connection_invalidated:
                    raise
        raise AssertionError("unreachable")


def _discard(connection: Connection | None) -> None:
    if connection is not None:
        try:
            connection.invalidate()
            connection.close()
        except Exception:  # already broken: nothing more to release
            log.debug("closing a broken intake connection failed", exc_info=True)
    return None

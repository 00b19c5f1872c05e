"""Reading payloads one batch ahead of the replay, and holding the cycle collector off while a batch is in hand
(and, over a run of many batches, between them): the ways a large replay (`replay --all`) keeps its time in SQL and
rules rather than in parsing and GC."""
from __future__ import annotations

import gc
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, text

from backoffice.billing.replay.archive import Payloads, read_payloads

log = logging.getLogger(__name__)


@contextmanager
def paused_cycle_collection() -> Iterator[None]:
    """Hold off Python's cycle collector while a batch is in hand.

    A batch keeps thousands of decoded payloads alive at once; the collector, triggered by their allocation,
    would traverse them again and again (a third of a replay's time) to find the few cycles a batch makes.
    Those are collected as usual once the batch is done and its payloads freed, so memory stays as flat as before.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class CollectedEvery:
    """The cycle collector for a run of many batches in a process of its own (a shard of `replay --all`): off for
    the whole run, with one full collection every `batches` batches, and what lives before the run (the app, the
    catalog, the rules) set aside from those collections. Only there: in a shared process the garbage it puts off
    (another thread's, a test's) would be finalized later, out of its place.

    Enabled between batches, the collector ran a few times per batch, each time traversing what the read-ahead
    thread had just decoded for the next batch, which is never garbage: 4.4–4.9 s of each shard's ~24 s of Python
    over the 448,440-event archive. The cycles a batch does make are few and wait a few batches here, so memory
    stays as flat (210 MiB per shard either way); the collector's time falls to about 0.6 s per shard.
    """

    def __init__(self, batches: int | None):
        self.batches = batches  # None: leave the collector alone
        self.done = 0
        self.was_enabled = gc.isenabled()

    def __enter__(self) -> CollectedEvery:
        if self.batches:
            # The run's long-lived objects: no collection during the run need traverse them. Any garbage among them
            # is only put off until the run ends; collecting here first would run other threads' finalizers at once.
            gc.freeze()
            gc.disable()
        return self

    def batch_done(self) -> None:
        self.done += 1
        if self.batches and self.done % self.batches == 0:
            gc.collect()

    def __exit__(self, *exc: object) -> None:
        if self.batches:
            gc.unfreeze()  # back to the oldest generation
            if self.was_enabled:
                gc.enable()


class ReadAhead:
    """Batches of customers, each with its events' payloads, read on a connection of its own one batch ahead.

    While one batch is replayed, a thread reads and parses the next batch's payloads, so PostgreSQL's rendering
    of jsonb and the parsing leave the replay's path. Safe because a payload never changes (§4.7); the replay
    still reads which events a customer has, and their statuses, under the customer's lock, and reads there
    any payload not read ahead. One batch ahead at most: memory stays flat.
    """

    def __init__(self, engine: Engine | None, batches: Sequence[list[str]]):
        self.engine = engine  # None: read nothing ahead
        self.batches = batches

    def __iter__(self) -> Iterator[tuple[list[str], Payloads]]:
        engine = self.engine
        if engine is None:
            yield from ((customer_ids, {}) for customer_ids in self.batches)
            return
        if not self.batches:
            return
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-read-ahead")
        try:
            ahead = pool.submit(self._read, engine, self.batches[0])
            for index, customer_ids in enumerate(self.batches):
                payloads = self._payloads(ahead)
                if index + 1 < len(self.batches):
                    ahead = pool.submit(self._read, engine, self.batches[index + 1])
                yield customer_ids, payloads
                del payloads
        finally:
            pool.shutdown(cancel_futures=True)

    @staticmethod
    def _read(engine: Engine, customer_ids: list[str]) -> dict[str, dict[str, Any]]:
        with engine.connect() as connection:
            # The caller waits for this read: were the caller's own open transaction to hold a lock it needs,
            # waiting for the lock would wait forever. Rather give up; the batch then reads its own payloads.
            connection.execute(text("SET LOCAL lock_timeout = '2s'"))
            return read_payloads(connection, customer_ids)

    @staticmethod
    def _payloads(ahead: Future[dict[str, dict[str, Any]]]) -> Payloads:
        try:
            return ahead.result()
        except Exception:
            # Only a shortcut failed: the replay reads under the lock whatever payload it was not given.
            log.warning("reading payloads ahead failed; the batch reads its own", exc_info=True)
            return {}

"""A replay of many customers split over processes, so that every core works (`replay --all`, issue 21).

Customers are dealt to shards by a stable hash of their id (the same customer lands in the same shard on every
machine and every run; Python's own `hash()` is salted per process). Each shard is a process of its own, started
with `spawn`: it builds the app from the parent's settings, opens its own engine, and replays its customers a batch
per transaction exactly as one process would, each customer under its advisory lock (DESIGN §2.2, §4.8). Shards
share no customer, so they never wait for each other's locks; the rows they do share (`mrr_daily`'s days) are
written in one order by every batch (`writer.Rollup`), so they wait, but never deadlock.

A shard reports each batch it finished and its totals on a queue; the parent sums them, for the CLI's bar and the
job's progress. A shard that raises, or dies without a word (SIGKILL, out of memory), fails the whole replay with
the shard's error: the other shards are stopped (their open batch rolls back) and a rerun picks up what is still
unsettled, as after any interrupted replay.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import queue as queues
import traceback
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from flask import Flask

log = logging.getLogger(__name__)

# How long the parent waits on the queue before it looks whether a shard died without a word.
POLL_SECONDS = 0.5
# Settings a shard's app is built from: every setting the config knows, and Flask's own testing switch.
EXTRA_SETTINGS = ("TESTING",)


class ReplayShardFailed(RuntimeError):
    """A shard of a parallel replay raised or died; `detail` holds its traceback when it had one."""

    def __init__(self, shard: int, shards: int, error: str, detail: str = ""):
        super().__init__(f"replay shard {shard + 1} of {shards} failed: {error}")
        self.shard, self.shards, self.error, self.detail = shard, shards, error, detail


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, which a container's cpuset narrows), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def shard_of(customer_id: str, shards: int) -> int:
    """The shard a customer belongs to: CRC-32 of its id, stable across processes, runs and machines."""
    return zlib.crc32(customer_id.encode()) % shards


def split(customer_ids: Sequence[str], shards: int) -> list[list[str]]:
    """The customers dealt to `shards` shards by `shard_of`, each shard in the order given."""
    dealt: list[list[str]] = [[] for _ in range(shards)]
    for customer_id in customer_ids:
        dealt[shard_of(customer_id, shards)].append(customer_id)
    return dealt


def shard_settings(app: Flask) -> dict[str, Any]:
    """The settings a shard builds its app from: the parent's, so that it replays against the same database with
    the same rules (the engine options the factory derives again)."""
    from backoffice.config import Config

    keys = {key for key in dir(Config) if key.isupper()} | set(EXTRA_SETTINGS)
    keys.discard("SQLALCHEMY_ENGINE_OPTIONS")
    return {key: app.config[key] for key in sorted(keys) if key in app.config}


def run_shards(app: Flask, shards: list[list[str]], progress: Callable[[int], None]) -> list[dict[str, int]]:
    """Replay each list of customers in a process of its own; return each shard's totals.

    `progress(customers)` is called in this process as each shard finishes a batch of that many customers.
    Raises `ReplayShardFailed` for the first shard that fails, after stopping the others.
    """
    context = multiprocessing.get_context("spawn")
    reports: Any = context.Queue()
    settings = shard_settings(app)
    processes = [context.Process(target=_shard_main, args=(settings, index, len(shards), customer_ids, reports),
                                 name=f"replay-shard-{index + 1}", daemon=True)
                 for index, customer_ids in enumerate(shards)]
    totals: dict[int, dict[str, int]] = {}
    try:
        for process in processes:
            process.start()
        while len(totals) < len(processes):
            try:
                message = reports.get(timeout=POLL_SECONDS)
            except queues.Empty:
                _check_alive(processes, totals, reports, progress)
                continue
            _handle(message, len(shards), totals, progress)
        for process in processes:
            process.join()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            if process.pid is not None:
                process.join(timeout=10)
        reports.close()
    return [totals[index] for index in range(len(processes))]


def _handle(message: tuple[str, int, Any], shards: int, totals: dict[int, dict[str, int]],
            progress: Callable[[int], None]) -> None:
    kind, shard, value = message
    if kind == "progress":
        progress(value)
    elif kind == "done":
        totals[shard] = value
    else:
        error, detail = value
        raise ReplayShardFailed(shard, shards, error, detail)


def _check_alive(processes: list[Any], totals: dict[int, dict[str, int]], reports: Any,
                 progress: Callable[[int], None]) -> None:
    """Fail for a shard that ended without reporting its end (after reading what it did say before it went)."""
    for index, process in enumerate(processes):
        if index in totals or process.exitcode is None:
            continue
        while index not in totals:
            try:
                _handle(reports.get_nowait(), len(processes), totals, progress)
            except queues.Empty:
                break
        if index not in totals:
            code = process.exitcode
            how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
            raise ReplayShardFailed(index, len(processes), f"the process ended ({how}) before it finished")


def _shard_main(settings: dict[str, Any], shard: int, shards: int, customer_ids: list[str], reports: Any) -> None:
    """A shard's process: build the app, replay the customers a batch per transaction, report, exit."""
    from backoffice import create_app
    from backoffice.billing.replay.tasks import COLLECT_EVERY, replay_customers
    from backoffice.extensions import db

    try:
        app = create_app(settings)
        with app.app_context():
            try:
                totals = replay_customers(customer_ids, progress=lambda done: reports.put(("progress", shard, done)),
                                          collect_every=COLLECT_EVERY)
            finally:
                db.session.remove()
                db.engine.dispose()
    except BaseException as error:
        log.exception("replay shard %d of %d failed", shard + 1, shards)
        reports.put(("failed", shard, (f"{type(error).__name__}: {error}".strip()[:2000], traceback.format_exc())))
        reports.close()
        reports.join_thread()
        raise SystemExit(1) from None
    reports.put(("done", shard, totals))
    reports.close()
    reports.join_thread()

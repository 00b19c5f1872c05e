"""Token buckets: the in-process one under a lock, and the Redis one shared by every holder of its key."""
from __future__ import annotations

import threading
import time

import pytest
from redis import Redis

from backoffice.stripe_gateway import InProcessTokenBucket, RateLimitTimeout, RedisTokenBucket
from tests.conftest import REDIS_SERVER


class FakeTime:
    """A clock that moves only when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def run_in_threads(buckets, tokens_each: int) -> tuple[float, list[float]]:
    """Have each bucket take its tokens in a thread of its own; return the seconds it took and the waits."""
    waits: list[float] = []
    started = time.monotonic()

    def take(bucket):
        for _ in range(tokens_each):
            waits.append(bucket.acquire(timeout=5))
    threads = [threading.Thread(target=take, args=(bucket,)) for bucket in buckets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started, waits


# --- in process ---------------------------------------------------------------------------------------


def test_in_process_bucket_spends_the_burst_then_waits_for_the_refill():
    fake = FakeTime()
    bucket = InProcessTokenBucket(2, burst=3, sleep=fake.sleep, clock=fake.clock)
    assert [bucket.acquire() for _ in range(3)] == [0, 0, 0]
    assert bucket.acquire() == pytest.approx(0.5)  # one token at 2 tokens/s
    assert bucket.acquire(cost=2) == pytest.approx(1.0)
    fake.now += 10  # idle time refills up to the burst, no more
    assert [bucket.acquire() for _ in range(3)] == [0, 0, 0]
    assert bucket.acquire() == pytest.approx(0.5)
    assert fake.slept == pytest.approx([0.5, 1.0, 0.5])


def test_in_process_bucket_times_out_without_sleeping_in_vain():
    fake = FakeTime()
    bucket = InProcessTokenBucket(1, sleep=fake.sleep, clock=fake.clock)
    bucket.acquire()
    with pytest.raises(RateLimitTimeout, match="within 0.5 s"):
        bucket.acquire(timeout=0.5)
    assert fake.slept == []
    assert bucket.acquire(timeout=1.0) == pytest.approx(1.0)


def test_in_process_bucket_is_shared_by_threads():
    bucket = InProcessTokenBucket(20, burst=2)
    seconds, waits = run_in_threads([bucket] * 4, 2)
    assert len(waits) == 8
    assert seconds >= 0.25  # 8 tokens: 2 from the burst, 6 refilled at 20/s, so at least 0.3 s


def test_buckets_refuse_impossible_settings():
    with pytest.raises(ValueError, match="rate must be positive"):
        InProcessTokenBucket(0)
    with pytest.raises(ValueError, match="burst must hold at least one token"):
        InProcessTokenBucket(5, burst=0.5)
    with pytest.raises(ValueError, match="cost must be between 0 and the burst"):
        InProcessTokenBucket(5, burst=2).acquire(cost=3)


# --- Redis --------------------------------------------------------------------------------------------


def test_redis_buckets_on_one_key_share_the_budget(redis, redis_prefix):
    first = RedisTokenBucket(redis, 5, burst=3, key_prefix=redis_prefix)
    other_connection = Redis.from_url(REDIS_SERVER)  # another process, as far as Redis can tell
    second = RedisTokenBucket(other_connection, 5, burst=3, key_prefix=redis_prefix)
    try:
        assert first.key == second.key == f"{redis_prefix}rate-limit:stripe"
        for _ in range(3):
            assert first.acquire(timeout=0) == 0
        with pytest.raises(RateLimitTimeout):
            second.acquire(timeout=0)
        assert second.acquire(timeout=2) >= 0.15  # a token takes 0.2 s at 5/s
        assert redis.exists(first.key) and 0 < redis.pttl(first.key) <= 1600
    finally:
        other_connection.close()


def test_redis_buckets_on_other_keys_do_not_share(redis, redis_prefix):
    mine = RedisTokenBucket(redis, 1, burst=1, name="account-a", key_prefix=redis_prefix)
    theirs = RedisTokenBucket(redis, 1, burst=1, name="account-b", key_prefix=redis_prefix)
    mine.acquire(timeout=0)
    assert theirs.acquire(timeout=0) == 0
    with pytest.raises(RateLimitTimeout):
        mine.acquire(timeout=0)


def test_redis_bucket_paces_contending_threads(redis, redis_prefix):
    connections = [Redis.from_url(REDIS_SERVER) for _ in range(4)]
    buckets = [RedisTokenBucket(connection, 20, burst=2, key_prefix=redis_prefix) for connection in connections]
    try:
        seconds, waits = run_in_threads(buckets, 2)
    finally:
        for connection in connections:
            connection.close()
    assert len(waits) == 8
    assert seconds >= 0.25  # 8 tokens: 2 from the burst, 6 refilled at 20/s, so at least 0.3 s
    # The hash holds what the last take left: less than one token, as every thread drew on it.
    assert 0 <= float(redis.hget(buckets[0].key, "tokens")) < 1

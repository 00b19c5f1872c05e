"""Token buckets that keep Stripe calls under the account's request budget.

Stripe limits requests per account, not per process, so every worker on every machine must draw from one
budget: the Redis bucket keeps it in one hash, updated atomically by a Lua script that reads the time from
Redis itself (machines' clocks may disagree; Redis' clock is the one all of them see). Without Redis (the
demo, a single process) the in-process bucket does the same under a lock.

A caller that finds the bucket empty sleeps for exactly the time the missing tokens take to refill, then
tries again; it gives up with `RateLimitTimeout` as soon as that wait would pass its deadline.
"""
from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable

from redis import Redis

from backoffice.stripe_gateway.errors import RateLimitTimeout

DEFAULT_TIMEOUT = 30.0
DEFAULT_KEY_PREFIX = "backoffice:"

# KEYS[1]: the bucket's hash; ARGV: rate (tokens/s), burst (capacity), cost.
# Returns the seconds to wait before `cost` tokens are there (0: taken now), as a string because Redis
# truncates Lua numbers to integers.
TAKE_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate)
  at = now
end
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class TokenBucket(ABC):
    """A bucket of `burst` tokens refilled at `rate` tokens per second; one token per request."""

    def __init__(self, rate: float, burst: float | None = None, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        if rate <= 0:
            raise ValueError(f"rate must be positive, not {rate!r}")
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else rate)
        if self.burst < 1:
            raise ValueError(f"burst must hold at least one token, not {self.burst!r}")
        self._sleep = sleep
        self._clock = clock

    def acquire(self, cost: float = 1, timeout: float | None = DEFAULT_TIMEOUT) -> float:
        """Take `cost` tokens, sleeping until they are there; return the seconds slept (0: taken at once).

        Raise `RateLimitTimeout` when they cannot be there within `timeout` seconds (None: wait as long as it takes).
        """
        if not 0 < cost <= self.burst:
            raise ValueError(f"cost must be between 0 and the burst ({self.burst:g}), not {cost!r}")
        deadline = None if timeout is None else self._clock() + timeout
        slept = 0.0
        while True:
            wait = self._take(cost)
            if wait <= 0:
                return slept
            if deadline is not None and self._clock() + wait > deadline:
                raise RateLimitTimeout(f"no Stripe request budget within {timeout:g} s ({self.rate:g} requests/s)",
                                       waited=slept)
            self._sleep(wait)
            slept += wait

    @abstractmethod
    def _take(self, cost: float) -> float:
        """Take `cost` tokens if they are there and return 0, else take none and return the seconds to wait."""


class InProcessTokenBucket(TokenBucket):
    """The budget of one process, for running without Redis."""

    def __init__(self, rate: float, burst: float | None = None, *, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(rate, burst, sleep=sleep, clock=clock)
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._at = clock()

    def _take(self, cost: float) -> float:
        with self._lock:
            now = self._clock()
            if now > self._at:
                self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
                self._at = now
            if self._tokens >= cost:
                self._tokens -= cost
                return 0.0
            return (cost - self._tokens) / self.rate


class RedisTokenBucket(TokenBucket):
    """The budget shared by every process using the same Redis key, wherever they run."""

    def __init__(self, redis: Redis, rate: float, burst: float | None = None, *, name: str = "stripe",
                 key_prefix: str = DEFAULT_KEY_PREFIX, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__(rate, burst, sleep=sleep, clock=clock)
        self.key = f"{key_prefix}rate-limit:{name}"
        self._script = redis.register_script(TAKE_SCRIPT)

    def _take(self, cost: float) -> float:
        wait = self._script(keys=[self.key], args=[repr(self.rate), repr(self.burst), repr(float(cost))])
        return float(wait)

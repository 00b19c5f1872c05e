"""Build a gateway from the settings, sharing one request budget per Stripe account.

The budget is per account at Stripe, so buckets are too: in Redis under a key derived from the secret key
(every worker on every machine with that key draws from it), or, without Redis, one bucket per process.
"""
from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from typing import Any

from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from backoffice.stripe_gateway.client import StripeGateway
from backoffice.stripe_gateway.errors import StripeNotConfigured
from backoffice.stripe_gateway.rate_limit import InProcessTokenBucket, RedisTokenBucket, TokenBucket

# DESIGN §2.4: 80 % of Stripe's 100 requests/s in live mode; test mode allows 25.
LIVE_RATE_LIMIT = 80
TEST_RATE_LIMIT = 25

_shared_lock = threading.Lock()
_in_process_buckets: dict[tuple[str, float], InProcessTokenBucket] = {}
_redis_clients: dict[tuple[str, float | None], Redis] = {}


def gateway_from_config(config: Mapping[str, Any]) -> StripeGateway:
    """Return a gateway for STRIPE_SECRET_KEY at STRIPE_API_BASE, limited to STRIPE_RATE_LIMIT requests/s."""
    secret_key = config.get("STRIPE_SECRET_KEY")
    if not secret_key:
        raise StripeNotConfigured("STRIPE_SECRET_KEY is not set: Stripe features are off")
    rate = rate_budget(config)
    bucket = shared_bucket(secret_key, rate, config.get("REDIS_URL"), config.get("REDIS_SOCKET_TIMEOUT"))
    return StripeGateway(secret_key, config.get("STRIPE_API_BASE"), bucket)


def rate_budget(config: Mapping[str, Any]) -> float | None:
    """Requests per second the configured key may make: STRIPE_RATE_LIMIT, else its mode's default (None: no key)."""
    secret_key = config.get("STRIPE_SECRET_KEY")
    if not secret_key:
        return None
    return config.get("STRIPE_RATE_LIMIT") or default_rate_limit(secret_key)


def default_rate_limit(secret_key: str) -> int:
    """Return the requests per second to allow a key when STRIPE_RATE_LIMIT is unset."""
    return LIVE_RATE_LIMIT if secret_key.startswith(("sk_live_", "rk_live_")) else TEST_RATE_LIMIT


def shared_bucket(secret_key: str, rate: float, redis_url: str | None, timeout: float | None = None) -> TokenBucket:
    """Return the bucket of this key's account: in Redis when there is one, else this process's own.

    With `timeout` (REDIS_SOCKET_TIMEOUT: short in the web, longer in workers), a slow or frozen Redis fails the
    take within that long and is not retried, instead of holding a request for redis-py's default retries.
    """
    account = hashlib.sha256(secret_key.encode()).hexdigest()[:16]  # names the budget without revealing the key
    with _shared_lock:
        if redis_url:
            client = _redis_clients.get((redis_url, timeout))
            if client is None:
                options = {} if timeout is None else {
                    "socket_timeout": timeout, "socket_connect_timeout": timeout, "retry": Retry(NoBackoff(), 0)}
                client = _redis_clients[(redis_url, timeout)] = Redis.from_url(redis_url, **options)
            return RedisTokenBucket(client, rate, name=f"stripe:{account}")
        bucket = _in_process_buckets.get((account, rate))
        if bucket is None:
            bucket = _in_process_buckets[(account, rate)] = InProcessTokenBucket(rate)
        return bucket

"""Retries: 429s from the sandbox's limiter, 5xx and Retry-After from a scripted Stripe, refused connections,
and the point where the gateway gives up."""
from __future__ import annotations

import pytest
import stripe

from backoffice.stripe_gateway import (
    InProcessTokenBucket,
    RateLimitTimeout,
    StripeGateway,
    StripeNotConfigured,
    StripeRequestFailed,
    StripeUnavailable,
)

RETRIEVE_CUSTOMER = "GET /v1/customers/{customer_id}"
RATE_LIMITED = {"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "Request rate limit exceeded."}}
API_ERROR = {"error": {"type": "api_error", "message": "An unknown error occurred"}}


def test_sandbox_429s_are_retried_until_the_calls_pass(sandbox, sandbox_server, sandbox_settings, stripe_client):
    customer = stripe_client.v1.customers.create(params={"metadata": {"tenant_id": "ten_busy"}})
    sandbox.settings.rate_limit_reads = 2  # per wall-clock second, answered with Stripe's 429 beyond that
    gateway = StripeGateway(sandbox_settings.secret_key, sandbox_server.url, InProcessTokenBucket(1000),
                            max_retries=8, backoff_seconds=0.2)
    infos = [gateway.customer(customer.id) for _ in range(6)]
    assert {info.tenant_id for info in infos} == {"ten_busy"}
    assert gateway.calls > 6  # some calls were refused and sent again
    assert sandbox.request_counts[RETRIEVE_CUSTOMER] == gateway.calls


def test_a_bucket_at_the_accounts_rate_avoids_429s(sandbox, sandbox_server, sandbox_settings, stripe_client):
    customer = stripe_client.v1.customers.create(params={})
    sandbox.settings.rate_limit_reads = 2
    # 1.5 calls/s, one at a time: any wall-clock second sees at most two, even with some network jitter.
    gateway = StripeGateway(sandbox_settings.secret_key, sandbox_server.url, InProcessTokenBucket(1.5, burst=1),
                            max_retries=0)
    for _ in range(4):
        gateway.customer(customer.id)
    assert gateway.calls == sandbox.request_counts[RETRIEVE_CUSTOMER] == 4


def test_refused_connections_give_up_as_unavailable(closed_port):
    delays: list[float] = []
    gateway = StripeGateway("sk_test_x", f"http://127.0.0.1:{closed_port}", InProcessTokenBucket(1000),
                            max_retries=2, backoff_seconds=0.01, sleep=delays.append)
    with pytest.raises(StripeUnavailable, match="after 3 attempts") as unavailable:
        gateway.customer("cus_any")
    assert unavailable.value.attempts == 3 and gateway.calls == 3
    assert isinstance(unavailable.value.__cause__, stripe.APIConnectionError)
    # Exponential with jitter: half of each step fixed, half random.
    assert 0.005 <= delays[0] <= 0.01 and 0.01 <= delays[1] <= 0.02 and len(delays) == 2


def test_every_attempt_takes_a_token(closed_port):
    bucket = InProcessTokenBucket(0.001, burst=3)  # three tokens, then none for 1,000 s
    gateway = StripeGateway("sk_test_x", f"http://127.0.0.1:{closed_port}", bucket, max_retries=5,
                            backoff_seconds=0.01, sleep=lambda seconds: None)
    with pytest.raises(RateLimitTimeout):
        gateway.customer("cus_any")
    assert gateway.calls == 3


def test_server_errors_are_retried(scripted_stripe):
    scripted_stripe.answer(500, API_ERROR)
    scripted_stripe.answer(503, API_ERROR)
    delays: list[float] = []
    gateway = StripeGateway("sk_test_x", scripted_stripe.url, InProcessTokenBucket(1000), sleep=delays.append)
    assert gateway.customer("cus_scripted").tenant_id == "ten_1"
    assert gateway.calls == 3 and len(delays) == 2
    assert scripted_stripe.paths == ["/v1/customers/cus_scripted"] * 3


def test_retry_after_is_honoured(scripted_stripe):
    scripted_stripe.answer(429, RATE_LIMITED, Retry_After="3")
    delays: list[float] = []
    gateway = StripeGateway("sk_test_x", scripted_stripe.url, InProcessTokenBucket(1000), backoff_seconds=0.01,
                            sleep=delays.append)
    assert gateway.customer("cus_scripted").email == "ops@example.com"
    assert delays == [3.0]


def test_stripe_should_retry_header_decides(scripted_stripe):
    conflict = {"error": {"type": "invalid_request_error", "code": "lock_timeout", "message": "Try again."}}
    scripted_stripe.answer(409, conflict, Stripe_Should_Retry="true")
    scripted_stripe.answer(503, API_ERROR, Stripe_Should_Retry="false")
    gateway = StripeGateway("sk_test_x", scripted_stripe.url, InProcessTokenBucket(1000), sleep=lambda seconds: None)
    with pytest.raises(StripeRequestFailed) as refused:
        gateway.customer("cus_scripted")
    assert refused.value.http_status == 503 and gateway.calls == 2


def test_five_hundreds_to_the_end_give_up(scripted_stripe):
    for _ in range(5):
        scripted_stripe.answer(502, API_ERROR)
    gateway = StripeGateway("sk_test_x", scripted_stripe.url, InProcessTokenBucket(1000), max_retries=4,
                            sleep=lambda seconds: None)
    with pytest.raises(StripeUnavailable) as unavailable:
        gateway.customer("cus_scripted")
    assert unavailable.value.attempts == 5 and len(scripted_stripe.paths) == 5


def test_no_secret_key_is_not_configured():
    for key in (None, ""):
        with pytest.raises(StripeNotConfigured):
            StripeGateway(key, None, InProcessTokenBucket(1))

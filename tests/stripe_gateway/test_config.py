"""STRIPE_RATE_LIMIT and the gateway built from the settings."""
from __future__ import annotations

import pytest

from backoffice.config import ConfigError, load_config
from backoffice.stripe_gateway import (
    InProcessTokenBucket,
    RedisTokenBucket,
    StripeNotConfigured,
    default_rate_limit,
    gateway_from_config,
    rate_budget,
)
from tests.conftest import REDIS_SERVER


def test_rate_limit_is_unset_by_default_and_parsed_from_the_environment():
    assert load_config({})["STRIPE_RATE_LIMIT"] is None
    assert load_config({"STRIPE_RATE_LIMIT": " 40 "})["STRIPE_RATE_LIMIT"] == 40
    assert load_config({"STRIPE_RATE_LIMIT": ""})["STRIPE_RATE_LIMIT"] is None


@pytest.mark.parametrize(("value", "message"), [
    ("0", "STRIPE_RATE_LIMIT must be at least 1, not 0"),
    ("-5", "STRIPE_RATE_LIMIT must be at least 1"),
    ("fast", "STRIPE_RATE_LIMIT must be a whole number, not 'fast'"),
    ("2.5", "STRIPE_RATE_LIMIT must be a whole number"),
])
def test_bad_rate_limits_raise_one_clear_error(value, message):
    with pytest.raises(ConfigError, match=message):
        load_config({"STRIPE_RATE_LIMIT": value})


@pytest.mark.parametrize(("key", "rate"), [
    ("sk_live_abc", 80), ("rk_live_abc", 80), ("sk_test_abc", 25), ("rk_test_abc", 25),
])
def test_default_rate_by_key_mode(key, rate):
    assert default_rate_limit(key) == rate
    assert gateway_from_config(load_config({"STRIPE_SECRET_KEY": key})).bucket.rate == rate


def test_explicit_rate_wins():
    settings = load_config({"STRIPE_SECRET_KEY": "sk_live_abc", "STRIPE_RATE_LIMIT": "12"})
    assert gateway_from_config(settings).bucket.rate == 12


@pytest.mark.parametrize(("environment", "budget"), [
    ({}, None), ({"STRIPE_RATE_LIMIT": "12"}, None),
    ({"STRIPE_SECRET_KEY": "sk_live_abc"}, 80), ({"STRIPE_SECRET_KEY": "sk_test_abc", "STRIPE_RATE_LIMIT": "12"}, 12),
])
def test_the_budget_the_jobs_page_shows_is_the_one_the_gateway_is_built_with(environment, budget):
    settings = load_config(environment)
    assert rate_budget(settings) == budget
    if budget is not None:
        assert gateway_from_config(settings).bucket.rate == budget


def test_without_redis_one_bucket_per_process_and_account():
    settings = load_config({"STRIPE_SECRET_KEY": "sk_test_process_wide"})
    first, second = gateway_from_config(settings), gateway_from_config(settings)
    assert isinstance(first.bucket, InProcessTokenBucket) and first.bucket is second.bucket
    other_account = gateway_from_config(load_config({"STRIPE_SECRET_KEY": "sk_test_another_account"}))
    assert other_account.bucket is not first.bucket


def test_with_redis_the_bucket_is_keyed_by_account_not_by_secret(redis):
    settings = load_config({"STRIPE_SECRET_KEY": "sk_test_secret_value", "REDIS_URL": REDIS_SERVER})
    first, second = gateway_from_config(settings), gateway_from_config(settings)
    assert isinstance(first.bucket, RedisTokenBucket)
    assert first.bucket.key == second.bucket.key and first.bucket.key.startswith("backoffice:rate-limit:stripe:")
    assert "secret_value" not in first.bucket.key
    other = gateway_from_config({**settings, "STRIPE_SECRET_KEY": "sk_test_other"})
    assert other.bucket.key != first.bucket.key


def test_gateway_from_config_talks_to_the_api_base(sandbox_server, sandbox_settings, stripe_client):
    customer = stripe_client.v1.customers.create(params={"metadata": {"tenant_id": "ten_config"}})
    settings = load_config({"STRIPE_SECRET_KEY": sandbox_settings.secret_key, "STRIPE_API_BASE": sandbox_server.url})
    gateway = gateway_from_config(settings)
    assert gateway.customer(customer.id).tenant_id == "ten_config" and gateway.calls == 1


def test_no_secret_key_means_not_configured():
    with pytest.raises(StripeNotConfigured, match="STRIPE_SECRET_KEY is not set"):
        gateway_from_config(load_config({}))
    with pytest.raises(StripeNotConfigured):
        gateway_from_config({})

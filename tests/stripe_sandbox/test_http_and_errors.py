"""The HTTP surface: Stripe's error shape and status for bad input (never a 500, never half-applied),
authentication, idempotency, rate limits and the request counter."""
import base64
import http.client
import json
import time
from urllib.parse import urlsplit

import pytest
import stripe

FORM = "application/x-www-form-urlencoded"


def raw(server, method: str, path: str, body: bytes = b"", content_type: str = FORM,
        key: str | None = "sk_test_sandbox", headers: dict[str, str] | None = None) -> tuple[int, dict, dict]:
    """Send one request by hand (no SDK) and return status, JSON body and headers."""
    parts = urlsplit(server.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    sent = {"Content-Type": content_type, **(headers or {})}
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    try:
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        return response.status, json.loads(response.read()), dict(response.headers)
    finally:
        connection.close()


def assert_stripe_error(body: dict, error_type: str = "invalid_request_error") -> dict:
    error = body["error"]
    assert error["type"] == error_type and isinstance(error["message"], str) and error["message"]
    assert set(error) <= {"type", "code", "message", "param", "decline_code", "charge"}
    return error


def assert_nothing_stored(sandbox) -> None:
    assert sandbox.store.objects == {} and sandbox.events.events == []


# --- routes and parameters ------------------------------------------------------------------------------


def test_an_unknown_route_is_stripes_404(sandbox_server, stripe_client):
    status, body, headers = raw(sandbox_server, "GET", "/v1/unicorns")
    assert status == 404
    assert assert_stripe_error(body)["message"].startswith("Unrecognized request URL (GET: /v1/unicorns).")
    assert headers["Request-Id"].startswith("req_")
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        stripe_client.raw_request("post", "/v1/unicorns", name="x")
    assert unknown.value.http_status == 404


def test_a_known_path_with_another_method_is_refused(sandbox_server, sandbox):
    status, body, _ = raw(sandbox_server, "PUT", "/v1/customers", b"name=x")
    assert status == 404
    assert assert_stripe_error(body)["message"].startswith("Unrecognized request URL (PUT: /v1/customers)")
    assert_nothing_stored(sandbox)


@pytest.mark.parametrize("params, param", [
    ({"nmae": "Typo"}, "nmae"),
    ({"name": "x", "address": {"zip": "1165"}}, "address[zip]"),
])
def test_unknown_parameters_are_named(stripe_client, sandbox, params, param):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.customers.create(params=params)
    assert (refused.value.http_status, refused.value.code, refused.value.param) == (400, "parameter_unknown", param)
    assert_nothing_stored(sandbox)


@pytest.mark.parametrize("body, content_type", [
    (b"name=\xff\xfe", FORM),                            # not UTF-8
    (b'{"name": "Json"}', "application/json"),           # Stripe takes form encoding only
    (b"metadata[a]=1&metadata=2", FORM),                 # a key that is both a hash and a value
    (b"metadata=1&metadata[a]=2", FORM),
    (b"name[=x", FORM),                                  # an unbalanced bracket
    (b"address[line1]x=1", FORM),                        # text after the brackets
    (b"expand[0][path]=customer", FORM),                 # a hash where strings belong
    (b"name=" + b"x" * (1024 * 1024 + 1), FORM),         # over 1 MiB
])
def test_malformed_bodies_get_a_400_and_change_nothing(sandbox_server, sandbox, body, content_type):
    status, answer, _ = raw(sandbox_server, "POST", "/v1/customers", body, content_type)
    assert status == 400
    assert_stripe_error(answer)
    assert_nothing_stored(sandbox)


@pytest.mark.parametrize("path", ["/v1/events?limit[]=5", "/v1/events?created[gt]=soon", "/v1/customers/%ff%fe",
                                  "/v1/test_helpers/sandbox_clock?expand[]=nothing"])
def test_odd_queries_never_answer_500(sandbox_server, path):
    status, body, _ = raw(sandbox_server, "GET", path)
    assert 400 <= status < 500
    assert_stripe_error(body)


def test_a_request_failing_midway_leaves_no_object_and_no_event(stripe_client, sandbox):
    # The customer is stored and customer.created emitted before the payment method is found missing.
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.customers.create(params={"name": "Half", "payment_method": "pm_missing"})
    assert missing.value.http_status == 404
    assert_nothing_stored(sandbox)
    assert stripe_client.v1.events.list().data == []


# --- authentication -------------------------------------------------------------------------------------


def test_missing_or_wrong_keys_are_401(sandbox_server, sandbox_settings):
    status, body, _ = raw(sandbox_server, "GET", "/v1/customers", key=None)
    assert status == 401 and "did not provide an API key" in assert_stripe_error(body)["message"]
    wrong = stripe.StripeClient("sk_test_not_the_key", base_addresses={"api": sandbox_server.url},
                                max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError) as refused:
        wrong.v1.customers.list()
    assert refused.value.http_status == 401 and "sk_test_" in refused.value.user_message
    assert "not_the_key" not in refused.value.user_message  # the key is masked, as Stripe does


def test_basic_auth_with_the_key_as_user_works(sandbox_server, sandbox_settings):
    basic = base64.b64encode(f"{sandbox_settings.secret_key}:".encode()).decode()
    status, body, _ = raw(sandbox_server, "GET", "/v1/customers", key=None, headers={"Authorization": f"Basic {basic}"})
    assert status == 200 and body["object"] == "list"


# --- idempotency ----------------------------------------------------------------------------------------


def test_an_idempotent_retry_replays_the_first_answer(stripe_client, sandbox, sandbox_server):
    first = stripe_client.v1.customers.create(params={"name": "Once"}, options={"idempotency_key": "key-1"})
    status, again, headers = raw(sandbox_server, "POST", "/v1/customers", b"name=Once",
                                 headers={"Idempotency-Key": "key-1"})
    assert status == 200 and again == first.to_dict() and headers["Idempotent-Replayed"] == "true"
    assert len(sandbox.store.all("customer")) == 1 and len(sandbox.events.events) == 1
    assert stripe_client.v1.events.list().data[0].request.idempotency_key == "key-1"


def test_reusing_a_key_with_other_parameters_is_refused(stripe_client, sandbox):
    stripe_client.v1.customers.create(params={"name": "First"}, options={"idempotency_key": "key-2"})
    with pytest.raises(stripe.IdempotencyError) as conflict:
        stripe_client.v1.customers.create(params={"name": "Second"}, options={"idempotency_key": "key-2"})
    assert conflict.value.http_status == 400
    assert [c["name"] for c in sandbox.store.all("customer")] == ["First"] and len(sandbox.events.events) == 1


# --- rate limits ----------------------------------------------------------------------------------------


def test_rate_limits_are_off_by_default(stripe_client):
    for _ in range(30):
        stripe_client.v1.customers.list()
    limits = stripe_client.deserialize(stripe_client.raw_request("get", "/v1/test_helpers/rate_limits"),
                                       api_mode="V1")
    assert (limits.reads, limits.writes) == (None, None)


RATE_LIMITED = {"error": {"type": "invalid_request_error", "code": "rate_limit", "message": (
    "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.")}}


def attempt(calls: int, call) -> tuple[int, int, int]:
    """Make `calls` calls; return how many passed, how many got Stripe's 429, and the seconds they spanned."""
    passed = limited = 0
    started = time.monotonic()
    for _ in range(calls):
        try:
            call()
            passed += 1
        except stripe.RateLimitError as error:
            assert (error.http_status, error.json_body) == (429, RATE_LIMITED)
            limited += 1
    return passed, limited, time.monotonic() - started


def test_writes_over_budget_get_stripes_429(stripe_client, sandbox):
    stripe_client.raw_request("post", "/v1/test_helpers/rate_limits", writes=2)
    passed, limited, seconds = attempt(10, lambda: stripe_client.v1.customers.create(params={"name": "Limited"}))
    windows = int(seconds) + 2  # the one-second windows the calls can have touched
    assert passed <= 2 * windows and limited >= 10 - 2 * windows
    assert len(sandbox.store.all("customer")) == passed  # a refused write changes nothing
    assert stripe_client.v1.customers.list().object == "list"  # reads have their own budget
    stripe_client.raw_request("post", "/v1/test_helpers/rate_limits", writes="")
    assert attempt(10, lambda: stripe_client.v1.customers.create(params={"name": "Free"}))[:2] == (10, 0)


def test_read_budget_from_the_settings(stripe_client, sandbox):
    sandbox.settings.rate_limit_reads = 1
    passed, limited, seconds = attempt(8, stripe_client.v1.customers.list)
    windows = int(seconds) + 2
    assert passed <= windows and limited >= 8 - windows
    stripe_client.raw_request("post", "/v1/test_helpers/rate_limits", reads="")  # control routes stay open
    assert sandbox.settings.rate_limit_reads is None


def test_bad_rate_limits_are_refused(stripe_client):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.raw_request("post", "/v1/test_helpers/rate_limits", writes=0)
    assert refused.value.param == "writes"


# --- request counts -------------------------------------------------------------------------------------


def test_requests_are_counted_per_route(stripe_client):
    stripe_client.raw_request("post", "/v1/test_helpers/request_counts/reset")
    customer = stripe_client.v1.customers.create(params={"name": "Counted"})
    stripe_client.v1.customers.retrieve(customer.id)
    stripe_client.v1.customers.retrieve(customer.id)
    counts = stripe_client.deserialize(stripe_client.raw_request("get", "/v1/test_helpers/request_counts"),
                                       api_mode="V1").counts.to_dict()
    assert counts == {"POST /v1/customers": 1, "GET /v1/customers/{customer_id}": 2,
                      "GET /v1/test_helpers/request_counts": 1}

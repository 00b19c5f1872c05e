"""Webhook endpoints and delivery: Stripe's signatures, retries, and the drop/duplicate/delay/shuffle knobs.

Every test delivers over real HTTP to a receiver on 127.0.0.1 and verifies with the SDK's own checks.
"""
import time

import pytest
import stripe

from backoffice.stripe_sandbox.webhooks import DeliveryKnobs, sign
from tests.stripe_sandbox.conftest import START, create_endpoint


def make_customers(client, count: int) -> list[str]:
    """Create customers (one customer.created event each) and return their ids."""
    return [client.v1.customers.create(params={"name": f"Customer {i}"}).id for i in range(count)]


def created_event_ids(client) -> list[str]:
    """Return the ids of all customer.created events, oldest first."""
    events = client.v1.events.list(params={"type": "customer.created", "limit": 100}).auto_paging_iter()
    return [event.id for event in events][::-1]


# --- endpoints ------------------------------------------------------------------------------------------


def test_create_returns_the_secret_once_and_the_fixture_shape(stripe_client, webhook_receiver):
    endpoint = create_endpoint(stripe_client, webhook_receiver.url, ("customer.created", "invoice.paid"),
                               description="Backoffice", metadata={"env": "test"}, api_version="2020-03-02")
    assert endpoint.id.startswith("we_") and endpoint.secret.startswith("whsec_")
    retrieved = stripe_client.v1.webhook_endpoints.retrieve(endpoint.id).to_dict()
    assert retrieved == {
        "id": endpoint.id, "object": "webhook_endpoint", "api_version": "2020-03-02", "application": None,
        "created": START, "description": "Backoffice", "enabled_events": ["customer.created", "invoice.paid"],
        "livemode": False, "metadata": {"env": "test"}, "status": "enabled", "url": webhook_receiver.url,
    }
    assert {**retrieved, "secret": endpoint.secret} == endpoint.to_dict()


def test_update_list_and_delete(stripe_client, webhook_receiver):
    first = create_endpoint(stripe_client, webhook_receiver.url)
    second = create_endpoint(stripe_client, "http://localhost:9/other")
    updated = stripe_client.v1.webhook_endpoints.update(first.id, params={
        "disabled": True, "enabled_events": ["customer.updated"], "api_version": "2024-06-20",
        "url": "http://[::1]:8080/hooks"})
    assert (updated.status, updated.enabled_events, updated.api_version, updated.url) == (
        "disabled", ["customer.updated"], "2024-06-20", "http://[::1]:8080/hooks")
    assert stripe_client.v1.webhook_endpoints.update(first.id, params={"disabled": False}).status == "enabled"
    page = stripe_client.v1.webhook_endpoints.list(params={"limit": 1})
    assert [e.id for e in page.data] == [second.id] and page.has_more
    assert stripe_client.v1.webhook_endpoints.delete(second.id).to_dict() == {
        "id": second.id, "object": "webhook_endpoint", "deleted": True}
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.webhook_endpoints.retrieve(second.id)
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    assert [e.id for e in stripe_client.v1.webhook_endpoints.list().auto_paging_iter()] == [first.id]


@pytest.mark.parametrize("url", ["http://example.com/hook", "http://10.0.0.7/hook", "http://0.0.0.0:80/",
                                 "https://127.0.0.1/hook", "ftp://127.0.0.1/", "not a url"])
def test_only_loopback_http_urls_are_accepted(stripe_client, sandbox, url):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        create_endpoint(stripe_client, url)
    assert (refused.value.http_status, refused.value.code, refused.value.param) == (400, "url_invalid", "url")
    assert "loopback" in refused.value.user_message
    assert sandbox.store.all("webhook_endpoint") == []


def test_a_non_loopback_url_is_refused_on_update_too(stripe_client, webhook_receiver):
    endpoint = create_endpoint(stripe_client, webhook_receiver.url)
    with pytest.raises(stripe.InvalidRequestError, match="loopback"):
        stripe_client.v1.webhook_endpoints.update(endpoint.id, params={"url": "http://192.168.1.2/hook"})
    assert stripe_client.v1.webhook_endpoints.retrieve(endpoint.id).url == webhook_receiver.url


@pytest.mark.parametrize("params, param", [
    ({"enabled_events": []}, "enabled_events"),
    ({"enabled_events": ["customer created"]}, "enabled_events[0]"),
    ({"enabled_events": ["*"], "api_version": "2019-12-03"}, "api_version"),
    ({"enabled_events": ["*"], "api_version": "2025-13-45.basil"}, "api_version"),
])
def test_bad_enabled_events_and_versions_are_refused(stripe_client, webhook_receiver, params, param):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.webhook_endpoints.create(params={"url": webhook_receiver.url, **params})
    assert (refused.value.http_status, refused.value.param) == (400, param)


def test_an_unknown_version_is_refused_on_update(stripe_client, webhook_receiver):
    endpoint = create_endpoint(stripe_client, webhook_receiver.url)
    with pytest.raises(stripe.InvalidRequestError, match="Invalid Stripe API version: 2021-01-01"):
        stripe_client.v1.webhook_endpoints.update(endpoint.id, params={"api_version": "2021-01-01"})


# --- delivery and signatures ----------------------------------------------------------------------------


def test_deliveries_verify_with_the_sdk_and_match_the_event_log(stripe_client, sandbox, webhook_receiver):
    endpoint = create_endpoint(stripe_client, webhook_receiver.url)
    make_customers(stripe_client, 3)
    sandbox.webhooks.wait_idle()
    assert webhook_receiver.event_ids() == created_event_ids(stripe_client)
    for received in webhook_receiver.received:
        event = stripe.Webhook.construct_event(received.body, received.headers["Stripe-Signature"], endpoint.secret)
        assert event.type == "customer.created" and event.api_version == sandbox.settings.api_version
        assert received.headers["Content-Type"] == "application/json; charset=utf-8"
        assert received.headers["User-Agent"].startswith("Stripe/1.0")
        signed_at = int(received.headers["Stripe-Signature"].split(",")[0].removeprefix("t="))
        assert abs(signed_at - time.time()) < 60  # the real clock, not the sandbox's frozen one


def test_a_tampered_body_or_an_old_timestamp_does_not_verify(stripe_client, sandbox, webhook_receiver):
    endpoint = create_endpoint(stripe_client, webhook_receiver.url)
    make_customers(stripe_client, 1)
    sandbox.webhooks.wait_idle()
    received = webhook_receiver.received[0]
    header = received.headers["Stripe-Signature"]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(received.body.replace(b"Customer 0", b"Customer 9"), header, endpoint.secret)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(received.body, header, "whsec_someone_elses")
    stale = int(time.time()) - 301
    with pytest.raises(stripe.SignatureVerificationError, match="tolerance"):
        stripe.Webhook.construct_event(received.body, sign(received.body, endpoint.secret, stale), endpoint.secret)
    moved = f"t={stale + 1},{header.split(',', 1)[1]}"  # a fresh-looking t on the old signature
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(received.body, moved, endpoint.secret)


def test_sign_matches_the_sdks_own_header():
    payload = '{"id": "evt_1"}'
    expected = stripe.WebhookSignature.generate_signature_header(payload, "whsec_test", timestamp=1767225600)
    assert sign(payload.encode(), "whsec_test", 1767225600) == expected


def test_only_enabled_endpoints_that_want_the_type_get_it(stripe_client, sandbox, receiver_factory):
    everything, updates_only, disabled = receiver_factory(), receiver_factory(), receiver_factory()
    create_endpoint(stripe_client, everything.url)
    create_endpoint(stripe_client, updates_only.url, ("customer.updated",))
    off = create_endpoint(stripe_client, disabled.url)
    stripe_client.v1.webhook_endpoints.update(off.id, params={"disabled": True})
    customer_id = make_customers(stripe_client, 1)[0]
    stripe_client.v1.customers.update(customer_id, params={"email": "a@example.com"})
    sandbox.webhooks.wait_idle()
    assert [r.event["type"] for r in everything.received] == ["customer.created", "customer.updated"]
    assert [r.event["type"] for r in updates_only.received] == ["customer.updated"]
    assert disabled.received == []


def test_pending_webhooks_counts_down_as_endpoints_answer(stripe_client, sandbox, receiver_factory):
    create_endpoint(stripe_client, receiver_factory().url)
    create_endpoint(stripe_client, receiver_factory().url)
    make_customers(stripe_client, 1)
    sandbox.webhooks.wait_idle()
    event = stripe_client.v1.events.list().data[0]
    assert event.pending_webhooks == 0
    assert stripe_client.v1.events.list(params={"delivery_success": True}).data[0].id == event.id


def test_an_endpoint_pinned_to_an_old_version_gets_that_shape(stripe_client, sandbox, webhook_receiver):
    endpoint = create_endpoint(stripe_client, webhook_receiver.url, api_version="2020-03-02")
    make_customers(stripe_client, 1)
    sandbox.webhooks.wait_idle()
    event = stripe.Webhook.construct_event(webhook_receiver.received[0].body,
                                           webhook_receiver.received[0].headers["Stripe-Signature"], endpoint.secret)
    assert event.api_version == "2020-03-02"
    assert event.data.object.subscriptions.object == "list"  # still auto-expanded before 2020-08-27
    assert stripe_client.v1.events.list().data[0].api_version == sandbox.settings.api_version


# --- retries --------------------------------------------------------------------------------------------


def test_non_2xx_answers_are_retried_until_success(stripe_client, fast_webhooks, webhook_receiver):
    create_endpoint(stripe_client, webhook_receiver.url)
    webhook_receiver.answer(500, 503, 400)
    make_customers(stripe_client, 1)
    fast_webhooks.webhooks.wait_idle()
    attempts = webhook_receiver.received
    assert len(attempts) == 4 and len({a.event["id"] for a in attempts}) == 1
    gaps = [later.at - earlier.at for earlier, later in zip(attempts, attempts[1:], strict=False)]
    base = fast_webhooks.settings.webhook_retry_base_seconds
    assert all(gap >= base * 2 ** n for n, gap in enumerate(gaps))  # the backoff doubles
    assert stripe_client.v1.events.list().data[0].pending_webhooks == 0


def test_connection_failures_are_retried(stripe_client, fast_webhooks, webhook_receiver, receiver_factory):
    gone = receiver_factory()
    gone_url = gone.url
    gone.close()  # nothing listens on that port any more
    endpoint = create_endpoint(stripe_client, gone_url)
    fast_webhooks.settings.webhook_retry_base_seconds = 0.3
    make_customers(stripe_client, 1)
    stripe_client.v1.webhook_endpoints.update(endpoint.id, params={"url": webhook_receiver.url})
    fast_webhooks.webhooks.wait_idle()
    assert len(webhook_receiver.received) == 1
    assert stripe_client.v1.events.list().data[0].pending_webhooks == 0


def test_delivery_gives_up_after_the_last_attempt(stripe_client, fast_webhooks, webhook_receiver):
    fast_webhooks.settings.webhook_max_attempts = 3
    create_endpoint(stripe_client, webhook_receiver.url)
    webhook_receiver.answer(500, 500, 500, 500)
    make_customers(stripe_client, 1)
    fast_webhooks.webhooks.wait_idle()
    assert len(webhook_receiver.received) == 3
    event = stripe_client.v1.events.list().data[0]
    assert event.pending_webhooks == 1
    assert [e.id for e in stripe_client.v1.events.list(params={"delivery_success": False}).data] == [event.id]


# --- knobs ----------------------------------------------------------------------------------------------


def run_with_knobs(client, sandbox, receiver_factory, knobs: dict, events: int = 30) -> tuple[list, list]:
    """Send the same events to two endpoints with identical knobs; return what each received."""
    first, second = receiver_factory(), receiver_factory()
    for receiver in (first, second):
        endpoint = create_endpoint(client, receiver.url)
        client.raw_request("post", f"/v1/test_helpers/webhook_endpoints/{endpoint.id}/delivery_knobs", **knobs)
    make_customers(client, events)
    sandbox.webhooks.wait_idle()
    return first.event_ids(), second.event_ids()


def test_drop_loses_a_seeded_fraction_of_events(stripe_client, fast_webhooks, receiver_factory):
    first, second = run_with_knobs(stripe_client, fast_webhooks, receiver_factory, {"drop_rate": "0.5", "seed": 11})
    emitted = created_event_ids(stripe_client)
    assert first == second  # the same seed drops the same events
    assert 5 < len(first) < 25 and first == [e for e in emitted if e in set(first)]
    lost = stripe_client.v1.events.list(params={"delivery_success": False, "limit": 100}).data
    assert {e.id for e in lost} == set(emitted) - set(first)  # a lost webhook stays pending in the log
    assert all(e.pending_webhooks == 2 for e in lost)


def test_drop_rate_one_sends_nothing(stripe_client, sandbox, webhook_receiver):
    endpoint = create_endpoint(stripe_client, webhook_receiver.url)
    sandbox.webhooks.set_knobs(endpoint.id, DeliveryKnobs(drop_rate=1.0))
    make_customers(stripe_client, 5)
    sandbox.webhooks.wait_idle()
    assert webhook_receiver.received == []
    assert len(stripe_client.v1.events.list().data) == 5


def test_duplicate_sends_a_seeded_fraction_twice(stripe_client, fast_webhooks, receiver_factory):
    first, second = run_with_knobs(stripe_client, fast_webhooks, receiver_factory,
                                   {"duplicate_rate": "0.5", "seed": 5})
    emitted = created_event_ids(stripe_client)
    assert first == second
    twice = {e for e in emitted if first.count(e) == 2}
    assert set(first) == set(emitted) and 5 < len(twice) < 25 and len(first) == 30 + len(twice)


def test_shuffle_reorders_each_window_repeatably(stripe_client, fast_webhooks, receiver_factory):
    fast_webhooks.settings.webhook_shuffle_linger_seconds = 60  # windows leave full, however slow the requests
    first, second = run_with_knobs(stripe_client, fast_webhooks, receiver_factory, {"shuffle": "10", "seed": 3})
    emitted = created_event_ids(stripe_client)
    assert first == second and first != emitted
    for start in range(0, 30, 10):  # full windows are shuffled among themselves
        assert sorted(first[start:start + 10]) == sorted(emitted[start:start + 10])


def test_shuffle_without_a_window_releases_on_flush(stripe_client, fast_webhooks, webhook_receiver):
    endpoint = create_endpoint(stripe_client, webhook_receiver.url)
    fast_webhooks.settings.webhook_shuffle_linger_seconds = 60
    fast_webhooks.webhooks.set_knobs(endpoint.id, DeliveryKnobs(shuffle=True, seed=8))
    make_customers(stripe_client, 12)
    time.sleep(0.2)
    assert webhook_receiver.received == []  # held until flushed (or until they linger 60 s)
    fast_webhooks.webhooks.wait_idle()
    emitted = created_event_ids(stripe_client)
    assert sorted(webhook_receiver.event_ids()) == sorted(emitted) and webhook_receiver.event_ids() != emitted


def test_delay_holds_each_delivery(stripe_client, sandbox, webhook_receiver):
    endpoint = create_endpoint(stripe_client, webhook_receiver.url)
    stripe_client.raw_request("post", f"/v1/test_helpers/webhook_endpoints/{endpoint.id}/delivery_knobs",
                              delay_seconds="0.4")
    sent_at = time.monotonic()
    make_customers(stripe_client, 1)
    sandbox.webhooks.wait_idle()
    assert webhook_receiver.received[0].at - sent_at >= 0.4


def test_knobs_read_back_and_validate(stripe_client, webhook_receiver):
    endpoint = create_endpoint(stripe_client, webhook_receiver.url)
    path = f"/v1/test_helpers/webhook_endpoints/{endpoint.id}/delivery_knobs"
    stripe_client.raw_request("post", path, drop_rate="0.1", shuffle="true", seed="4")
    stripe_client.raw_request("post", path, duplicate_rate="0.2", drop_customers=["cus_a", "cus_b"])
    knobs = stripe_client.deserialize(stripe_client.raw_request("get", path), api_mode="V1").to_dict()
    assert knobs == {"object": "webhook_delivery_knobs", "webhook_endpoint": endpoint.id, "drop_rate": 0.1,
                     "duplicate_rate": 0.2, "delay_seconds": 0.0, "shuffle": True, "seed": 4,
                     "drop_customers": ["cus_a", "cus_b"]}
    for bad in ({"drop_rate": "1.5"}, {"delay_seconds": "-1"}, {"shuffle": "1"}, {"seed": "x"}, {"jitter": "1"}):
        with pytest.raises(stripe.InvalidRequestError) as refused:
            stripe_client.raw_request("post", path, **bad)
        assert refused.value.http_status == 400 and refused.value.param == next(iter(bad))
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.raw_request("get", "/v1/test_helpers/webhook_endpoints/we_missing/delivery_knobs")
    assert missing.value.http_status == 404


# --- resending ------------------------------------------------------------------------------------------


def test_redeliver_sends_stored_events_again(stripe_client, sandbox, webhook_receiver, receiver_factory):
    make_customers(stripe_client, 3)  # before any endpoint existed
    late = receiver_factory()
    endpoint = create_endpoint(stripe_client, late.url, ("customer.created",))
    emitted = created_event_ids(stripe_client)
    answer = stripe_client.raw_request("post", f"/v1/test_helpers/webhook_endpoints/{endpoint.id}/redeliver")
    assert stripe_client.deserialize(answer, api_mode="V1").events == emitted
    stripe_client.raw_request("post", f"/v1/test_helpers/webhook_endpoints/{endpoint.id}/redeliver",
                              events=[emitted[0]])
    sandbox.webhooks.wait_idle()
    assert late.event_ids() == [*emitted, emitted[0]]


def test_events_retry_is_what_stripe_events_resend_calls(stripe_client, sandbox, webhook_receiver):
    endpoint = create_endpoint(stripe_client, webhook_receiver.url)
    sandbox.webhooks.set_knobs(endpoint.id, DeliveryKnobs(drop_rate=1.0))
    make_customers(stripe_client, 1)
    event_id = created_event_ids(stripe_client)[0]
    assert stripe_client.v1.events.retrieve(event_id).pending_webhooks == 1
    stripe_client.raw_request("post", f"/v1/events/{event_id}/retry", webhook_endpoint=endpoint.id)
    sandbox.webhooks.wait_idle()
    assert webhook_receiver.event_ids() == [event_id]  # a manual resend ignores the knobs
    assert stripe_client.v1.events.retrieve(event_id).pending_webhooks == 0
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.raw_request("post", "/v1/events/evt_missing/retry", webhook_endpoint=endpoint.id)
    assert missing.value.http_status == 404

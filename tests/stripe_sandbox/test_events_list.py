"""GET /v1/events through the SDK: newest first, every filter, paging both ways, limits and the 30-day window."""
import pytest
import stripe

from tests.stripe_sandbox.conftest import START, create_endpoint

STEP = 100  # seconds between the timeline's customers


def advance(client, **params) -> None:
    client.raw_request("post", "/v1/test_helpers/sandbox_clock/advance", **params)


def ids(events) -> list[str]:
    return [event.id for event in events]


@pytest.fixture
def timeline(stripe_client) -> list[stripe.Event]:
    """Five customers STEP seconds apart, each created then updated, then a product; oldest first."""
    for index in range(5):
        customer = stripe_client.v1.customers.create(params={"name": f"Customer {index}"})
        stripe_client.v1.customers.update(customer.id, params={"email": f"c{index}@example.com"})
        advance(stripe_client, seconds=STEP)
    stripe_client.v1.products.create(params={"name": "Standard"})
    events = list(stripe_client.v1.events.list(params={"limit": 100}).auto_paging_iter())
    return events[::-1]


def test_lists_newest_first(stripe_client, timeline):
    listed = stripe_client.v1.events.list(params={"limit": 100})
    assert ids(listed.data) == ids(timeline)[::-1] and not listed.has_more
    assert [e.type for e in timeline[:2]] == ["customer.created", "customer.updated"]
    assert [e.created for e in timeline] == [START + STEP * (i // 2) for i in range(10)] + [START + 5 * STEP]
    assert listed.url == "/v1/events"


@pytest.mark.parametrize("filters, expected_types", [
    ({"type": "customer.updated"}, {"customer.updated"}),
    ({"types": ["customer.updated", "product.created"]}, {"customer.updated", "product.created"}),
    ({"type": "customer.*"}, {"customer.created", "customer.updated"}),
    ({"type": "*"}, {"customer.created", "customer.updated", "product.created"}),
    ({"type": "invoice.paid"}, set()),
])
def test_type_filters(stripe_client, timeline, filters, expected_types):
    listed = stripe_client.v1.events.list(params={"limit": 100, **filters}).data
    assert ids(listed) == [e.id for e in timeline[::-1] if e.type in expected_types]


@pytest.mark.parametrize("created, expected", [
    (START + STEP, lambda c: c == START + STEP),
    ({"gt": START + STEP}, lambda c: c > START + STEP),
    ({"gte": START + STEP}, lambda c: c >= START + STEP),
    ({"lt": START + STEP}, lambda c: c < START + STEP),
    ({"lte": START + STEP}, lambda c: c <= START + STEP),
    ({"gt": START, "lte": START + 3 * STEP}, lambda c: START < c <= START + 3 * STEP),
])
def test_created_filters(stripe_client, timeline, created, expected):
    listed = stripe_client.v1.events.list(params={"limit": 100, "created": created}).data
    assert ids(listed) == [e.id for e in timeline[::-1] if expected(e.created)]
    assert listed


def test_filters_combine_with_paging(stripe_client, timeline):
    params = {"type": "customer.created", "created": {"gte": START + STEP}, "limit": 2}
    first = stripe_client.v1.events.list(params=params)
    second = stripe_client.v1.events.list(params={**params, "starting_after": first.data[-1].id})
    wanted = [e.id for e in timeline[::-1] if e.type == "customer.created" and e.created >= START + STEP]
    assert ids(first.data) + ids(second.data) == wanted and first.has_more and not second.has_more


def test_pages_forward_and_backward(stripe_client, timeline):
    newest_first = ids(timeline)[::-1]
    pages, cursor = [], None
    while True:
        params = {"limit": 3, **({"starting_after": cursor} if cursor else {})}
        page = stripe_client.v1.events.list(params=params)
        pages.append(ids(page.data))
        if not page.has_more:
            break
        cursor = page.data[-1].id
    assert pages == [newest_first[i:i + 3] for i in range(0, 11, 3)]
    before_oldest = stripe_client.v1.events.list(params={"limit": 3, "ending_before": newest_first[-1]})
    assert ids(before_oldest.data) == newest_first[-4:-1] and before_oldest.has_more
    at_the_top = stripe_client.v1.events.list(params={"limit": 3, "ending_before": newest_first[2]})
    assert ids(at_the_top.data) == newest_first[:2] and not at_the_top.has_more


def test_auto_paging_walks_every_page_both_ways(stripe_client, timeline):
    forward = stripe_client.v1.events.list(params={"limit": 2}).auto_paging_iter()
    assert ids(forward) == ids(timeline)[::-1]
    backward = stripe_client.v1.events.list(params={"limit": 2, "ending_before": timeline[0].id}).auto_paging_iter()
    assert ids(backward) == ids(timeline[1:])  # oldest first: each page moves toward newer events


def test_delivery_success(stripe_client, fast_webhooks, receiver_factory):
    fast_webhooks.settings.webhook_max_attempts = 1
    healthy, failing = receiver_factory(), receiver_factory()
    failing.answer(*[500] * 10)
    create_endpoint(stripe_client, healthy.url, ("customer.created",))
    create_endpoint(stripe_client, failing.url, ("customer.updated",))
    customer = stripe_client.v1.customers.create(params={"name": "Delivered"})
    stripe_client.v1.customers.update(customer.id, params={"name": "Failed"})
    stripe_client.v1.products.create(params={"name": "Nobody listens"})
    fast_webhooks.webhooks.wait_idle()
    delivered = stripe_client.v1.events.list(params={"delivery_success": True}).data
    undelivered = stripe_client.v1.events.list(params={"delivery_success": False}).data
    assert [e.type for e in delivered] == ["customer.created"]
    assert [e.type for e in undelivered] == ["customer.updated"]
    assert undelivered[0].pending_webhooks == 1


@pytest.mark.parametrize("params, param", [
    ({"limit": 0}, "limit"),
    ({"limit": 101}, "limit"),
    ({"limit": "ten"}, "limit"),
    ({"created": {"after": START}}, "created[after]"),
    ({"created": "yesterday"}, "created"),
    ({"type": "customer.created", "types": ["customer.updated"]}, "types"),
])
def test_bad_list_parameters(stripe_client, timeline, params, param):
    with pytest.raises(stripe.InvalidRequestError) as refused:
        stripe_client.v1.events.list(params=params)
    assert (refused.value.http_status, refused.value.param) == (400, param)


def test_bad_cursors(stripe_client, timeline):
    with pytest.raises(stripe.InvalidRequestError) as both:
        stripe_client.v1.events.list(params={"starting_after": timeline[0].id, "ending_before": timeline[1].id})
    assert both.value.http_status == 400
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        stripe_client.v1.events.list(params={"starting_after": "evt_unknown"})
    assert (unknown.value.http_status, unknown.value.code, unknown.value.param) == (
        404, "resource_missing", "starting_after")


def test_the_limit_bounds_are_inclusive(stripe_client, timeline):
    assert len(stripe_client.v1.events.list(params={"limit": 1}).data) == 1
    assert len(stripe_client.v1.events.list(params={"limit": 100}).data) == 11


def test_events_older_than_30_days_leave_the_list_and_cannot_be_retrieved(stripe_client, timeline):
    oldest = timeline[0]
    assert stripe_client.v1.events.retrieve(oldest.id).id == oldest.id
    advance(stripe_client, days=31)
    assert stripe_client.v1.events.list(params={"limit": 100}).data == []
    with pytest.raises(stripe.InvalidRequestError) as expired:
        stripe_client.v1.events.retrieve(oldest.id)
    assert (expired.value.http_status, expired.value.code) == (404, "resource_missing")
    fresh = stripe_client.v1.customers.create(params={"name": "After the gap"})
    assert [e.data.object.id for e in stripe_client.v1.events.list().data] == [fresh.id]


def test_the_window_is_exactly_30_days(stripe_client, timeline):
    last = timeline[-1]
    advance(stripe_client, seconds=30 * 86400)  # the clock stands at the last event's second
    assert ids(stripe_client.v1.events.list().data) == [last.id]  # created exactly 30 days ago: still listed
    advance(stripe_client, seconds=1)
    assert stripe_client.v1.events.list().data == []


def test_retrieve_shows_the_event_as_listed(stripe_client, timeline):
    for event in timeline:
        assert stripe_client.v1.events.retrieve(event.id).to_dict() == event.to_dict()

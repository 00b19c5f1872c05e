"""POST /webhooks/stripe (DESIGN §2.1): signed deliveries archived once; everything else refused, nothing stored."""
import hashlib
import hmac
import json
import time

import pytest
from sqlalchemy import func, select, text

from backoffice.billing.models import StripeEvent, StripeEventDivergence, StripeEventState, Subscription
from tests.factories import make_subscription
from tests.samples import load_samples

SECRET = "whsec_test_current"
OLD_SECRET = "whsec_test_previous"


def sign(payload: bytes, secret: str = SECRET, at: int | None = None) -> str:
    timestamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


@pytest.fixture
def webhook(client, settings):
    settings(STRIPE_WEBHOOK_SECRETS=(SECRET, OLD_SECRET))

    def post(payload: bytes, signature: str | None = None, **headers):
        sent = {"Content-Type": "application/json", **headers}
        if signature is not False:
            sent["Stripe-Signature"] = signature or sign(payload)
        return client.post("/webhooks/stripe", data=payload, headers=sent)
    return post


@pytest.fixture(scope="module")
def samples():
    return load_samples()


def body(event: dict) -> bytes:
    return json.dumps(event).encode()


def archived(db_session):
    return db_session.scalar(select(func.count()).select_from(StripeEvent))


def test_a_signed_event_is_archived_pending_with_its_envelope(webhook, db_session, samples):
    event = samples.envelope("subscription_created")
    payload = body(event)
    response = webhook(payload)
    assert response.status_code == 200
    assert response.get_json() == {"received": True, "id": event["id"], "outcome": "stored"}
    row, state = db_session.get(StripeEvent, event["id"]), db_session.get(StripeEventState, event["id"])
    assert (row.type, state.status, row.api_version) == ("customer.subscription.created", "pending", "2020-03-02")
    assert row.stripe_customer_id == event["data"]["object"]["customer"]
    assert row.stripe_subscription_id == event["data"]["object"]["id"]
    assert row.stripe_created_at.timestamp() == event["created"]
    assert row.payload == event and row.payload_hash == hashlib.sha256(payload).hexdigest()
    assert state.tenant_id is None and row.recovered_at is None


def test_the_archive_keeps_numbers_as_sent_even_past_64_bits(webhook, db_session, samples):
    """orjson reads a huge integer as a float; the archive stores the body's text, so the number survives whole."""
    event = samples.envelope("customer_updated")
    event["data"]["object"]["metadata"] = {"big": 123456789012345678901234567890, "exact": 0.1000000000000000055511}
    payload = body(event).replace(b"0.1", b"0.1000000000000000055511", 1)
    assert webhook(payload).get_json()["outcome"] == "stored"
    stored = db_session.execute(text("SELECT payload #>> '{data,object,metadata,big}', "
                                     "payload #>> '{data,object,metadata,exact}' FROM stripe_events WHERE id = :id"),
                                {"id": event["id"]}).one()
    assert tuple(stored) == ("123456789012345678901234567890", "0.1000000000000000055511")


@pytest.mark.parametrize("name, customer, subscription", [
    ("invoice_paid", "customer", "subscription"),
    ("customer_updated", "id", None),
    ("charge_refunded", "customer", None),
])
def test_envelope_ids_from_other_objects(webhook, db_session, samples, name, customer, subscription):
    event = samples.envelope(name)
    assert webhook(body(event)).status_code == 200
    row = db_session.get(StripeEvent, event["id"])
    obj = event["data"]["object"]
    assert row.stripe_customer_id == obj[customer]
    assert row.stripe_subscription_id == (obj[subscription] if subscription else None)


def test_basil_invoice_names_its_subscription_under_parent(webhook, db_session):
    event = {"id": "evt_basil_invoice", "object": "event", "type": "invoice.paid", "created": 1767225600,
             "api_version": "2025-03-31.basil", "data": {"object": {
                 "id": "in_1", "object": "invoice", "customer": "cus_1",
                 "parent": {"type": "subscription_details", "subscription_details": {"subscription": "sub_1"}}}}}
    assert webhook(body(event)).status_code == 200
    assert db_session.get(StripeEvent, "evt_basil_invoice").stripe_subscription_id == "sub_1"


def test_redelivery_is_acknowledged_and_stored_once(webhook, db_session, samples):
    payload = body(samples.envelope("invoice_paid"))
    assert webhook(payload).get_json()["outcome"] == "stored"
    again = webhook(payload, signature=sign(payload, OLD_SECRET))  # rotated secrets both verify
    assert again.status_code == 200 and again.get_json()["outcome"] == "duplicate"
    assert archived(db_session) == 1


def test_same_id_other_body_keeps_the_stored_row_and_the_divergence(webhook, db_session, samples):
    event = samples.envelope("customer_updated")
    first = body(event)
    changed = body({**event, "data": {**event["data"], "object": {**event["data"]["object"], "email": "x@y.z"}}})
    webhook(first)
    response = webhook(changed)
    assert response.status_code == 200 and response.get_json()["outcome"] == "divergent"
    assert webhook(changed).get_json()["outcome"] == "divergent"  # the same divergent body is kept once
    assert db_session.get(StripeEvent, event["id"]).payload_hash == hashlib.sha256(first).hexdigest()
    divergences = db_session.scalars(select(StripeEventDivergence)).all()
    assert [(d.stripe_event_id, d.payload_hash) for d in divergences] == [
        (event["id"], hashlib.sha256(changed).hexdigest())]


def test_a_divergence_raises_the_customers_drift_flag_as_it_arrives(webhook, db_session, samples):
    """Drift from the moment it happens (issue 16): not at the next sweep."""
    event = samples.envelope("customer_updated")
    subscription = make_subscription(db_session, stripe_customer_id=event["data"]["object"]["id"])
    db_session.commit()
    webhook(body(event))
    changed = {**event, "data": {**event["data"], "object": {**event["data"]["object"], "email": "x@y.z"}}}
    for _ in range(2):  # listed once, however often it arrives
        assert webhook(body(changed)).get_json()["outcome"] == "divergent"
    db_session.expire_all()
    flagged = db_session.get(Subscription, subscription.id)
    assert flagged.has_drift_detected
    assert [(d["kind"], d["event_id"]) for d in flagged.drift_discrepancies] == [
        ("StripeEventPayloadDivergence", event["id"])]


@pytest.mark.parametrize("case, expected", [
    ("missing header", "missing Stripe-Signature header"),
    ("malformed header", "malformed Stripe-Signature header"),
    ("wrong secret", "signature does not match"),
    ("tampered body", "signature does not match"),
    ("stale timestamp", "more than 300 s away"),
])
def test_signature_failures_are_400_and_store_nothing(webhook, db_session, samples, case, expected):
    payload = body(samples.envelope("invoice_paid"))
    signature = {
        "missing header": False,
        "malformed header": "v1=abc",
        "wrong secret": sign(payload, "whsec_someone_else"),
        "tampered body": sign(payload[:-2] + b" }"),
        "stale timestamp": sign(payload, at=int(time.time()) - 301),
    }[case]
    response = webhook(payload, signature=signature)
    assert response.status_code == 400
    assert expected in response.get_json()["error"]
    assert archived(db_session) == 0


@pytest.mark.parametrize("payload, expected", [
    (b"not json at all", "body is not JSON"),
    (b"\xff\xfe", "body is not JSON"),
    (b'["a", "list"]', "not a Stripe event object"),
    (b'{"object": "customer", "id": "cus_1"}', "not a Stripe event object"),
    (b'{"object": "event", "type": "x", "created": 1, "data": {"object": {}}}', "event has no id"),
    (b'{"object": "event", "id": "evt_1", "data": {"object": {}}}', "lacks its type or created"),
])
def test_bodies_that_are_not_events_are_400(webhook, db_session, payload, expected):
    response = webhook(payload)
    assert response.status_code == 400 and expected in response.get_json()["error"]
    assert archived(db_session) == 0


def test_no_configured_secret_refuses_everything(client, settings, samples, db_session):
    settings(STRIPE_WEBHOOK_SECRETS=())
    payload = body(samples.envelope("invoice_paid"))
    response = client.post("/webhooks/stripe", data=payload, headers={"Stripe-Signature": sign(payload)})
    assert response.status_code == 400 and "no webhook signing secret" in response.get_json()["error"]


def test_bodies_over_one_mebibyte_are_413(webhook, db_session):
    payload = b'{"object": "event", "padding": "' + b"x" * (1024 * 1024) + b'"}'
    assert webhook(payload).status_code == 413
    assert archived(db_session) == 0


def test_the_webhook_needs_no_operator_and_no_csrf_token(webhook, samples):
    # No identity headers and CSRF on (the test app keeps it on): Stripe's signature is the credential.
    assert webhook(body(samples.envelope("payment_method_attached"))).status_code == 200


def test_database_unavailable_is_503_then_the_same_delivery_succeeds(make_app, app, samples, db_session):
    broken = make_app(SQLALCHEMY_DATABASE_URI="postgresql+psycopg://postgres@127.0.0.1:1/none",
                      STRIPE_WEBHOOK_SECRETS=(SECRET,))
    payload = body(samples.envelope("invoice_paid"))
    headers = {"Stripe-Signature": sign(payload)}
    with broken.test_client() as client:
        refused = client.post("/webhooks/stripe", data=payload, headers=headers)
    assert refused.status_code == 503 and "Stripe will retry" in refused.get_json()["error"]
    app.config["STRIPE_WEBHOOK_SECRETS"] = (SECRET,)
    try:
        with app.test_client() as client:
            assert client.post("/webhooks/stripe", data=payload, headers=headers).status_code == 200
    finally:
        app.config["STRIPE_WEBHOOK_SECRETS"] = ()
    assert archived(db_session) == 1

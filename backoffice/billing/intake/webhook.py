"""Stripe webhook intake (DESIGN §2.1): verify, read the envelope, archive once — nothing more on the hot path.

Plain Python: the web layer hands in the raw body, the signature header and the configured secrets; the
archive is written through the given SQLAlchemy session. Replay happens later, off the request.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from backoffice.billing.models import StripeEvent, StripeEventDivergence
from backoffice.billing.reconcile import drift

TOLERANCE_SECONDS = 300
# Stripe's events nest 8 levels at most (../shared/stripe-fixtures); past 64 is no event, and far short of the
# depth at which json.dumps in SQLAlchemy, deeper in the stack than our json.loads, would recurse out of it.
MAX_DEPTH = 64
# A Stripe `created` is seconds since 1970; one outside these bounds names no real event and overflows datetime.
CREATED_MIN, CREATED_MAX = 1, 4_102_444_800  # 2100-01-01
# The JSON escapes that can make a string jsonb refuses: NUL, and the surrogates (harmless only in pairs).
SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])")


class WebhookRejected(ValueError):
    """A delivery refused with a 400: the message says why, and nothing was stored."""


@dataclass(frozen=True)
class Envelope:
    """The fields the intake reads from an event; the rest waits in the archive for the replay job."""

    id: str
    type: str
    created: datetime
    api_version: str | None
    customer_id: str | None
    subscription_id: str | None
    payload: dict[str, Any]


class Outcome(Enum):
    """What archiving a delivery did."""

    STORED = "stored"
    DUPLICATE = "duplicate"  # the same event again (Stripe retries, reconciles re-pull)
    DIVERGENT = "divergent"  # the same id with another body: kept aside, the stored row wins


def verify_signature(payload: bytes, header: str | None, secrets: Sequence[str], *,
                     tolerance: int = TOLERANCE_SECONDS, now: float | None = None) -> None:
    """Check Stripe's `t=…,v1=…` signature of the raw body against every configured secret."""
    if not header:
        raise WebhookRejected("missing Stripe-Signature header")
    if not secrets:
        raise WebhookRejected("no webhook signing secret is configured (STRIPE_WEBHOOK_SECRETS)")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookRejected("malformed Stripe-Signature header: it needs t= and v1=")
    signed = f"{timestamp}.".encode() + payload
    expected = [hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest() for secret in secrets]
    if not any(hmac.compare_digest(e, s) for e in expected for s in signatures):
        raise WebhookRejected("signature does not match any configured webhook secret")
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        raise WebhookRejected(f"signature timestamp is more than {tolerance} s away from now")


def read_envelope(payload: bytes) -> Envelope:
    """Parse the event envelope, refusing anything that is not a Stripe event with an id, or that the archive
    (PostgreSQL's jsonb) cannot hold."""
    try:
        event = _DECODER.decode(payload.decode(json.detect_encoding(payload), "surrogatepass"))
    except RecursionError:
        raise WebhookRejected(f"body is nested too deeply: at most {MAX_DEPTH} levels") from None
    except (UnicodeDecodeError, ValueError):
        raise WebhookRejected("body is not JSON") from None
    problem = _unstorable(event, payload)
    if problem is not None:
        raise WebhookRejected(problem)
    if not isinstance(event, dict) or event.get("object") != "event" or not isinstance(event.get("data"), dict) \
            or not isinstance(event["data"].get("object"), dict):
        raise WebhookRejected("body is not a Stripe event object")
    event_id, event_type, created = event.get("id"), event.get("type"), event.get("created")
    if not isinstance(event_id, str) or not event_id:
        raise WebhookRejected("event has no id")
    if not isinstance(event_type, str) or not isinstance(created, int) or isinstance(created, bool):
        raise WebhookRejected("event lacks its type or created time")
    if not CREATED_MIN <= created < CREATED_MAX:
        raise WebhookRejected(f"event created time {created} is out of range ({CREATED_MIN} to {CREATED_MAX - 1})")
    obj = event["data"]["object"]
    return Envelope(
        id=event_id,
        type=event_type,
        created=datetime.fromtimestamp(created, UTC),
        api_version=event.get("api_version") if isinstance(event.get("api_version"), str) else None,
        customer_id=_customer_id(obj),
        subscription_id=_subscription_id(obj),
        payload=event,
    )


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json takes NaN and Infinity; jsonb (and JSON) does not


def _finite(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"{text} is out of range")  # 1e400: a float infinity, which jsonb refuses
    return number


def _unstorable(event: Any, payload: bytes) -> str | None:
    """Why jsonb would refuse the parsed body, or None: a NUL (\\u0000) or a lone surrogate in a string or a key,
    or nesting deeper than MAX_DEPTH. On the hot path, so the body is walked only when its bytes allow either: an
    escape that can make one, or more containers than MAX_DEPTH (Stripe's own events have at most about 50)."""
    if SUSPECT_ESCAPE.search(payload) and not _all_text_storable(event):
        return "a string or key holds a NUL character or a lone surrogate, which the archive cannot store"
    if payload.count(b"[") + payload.count(b"{") > MAX_DEPTH and _deeper_than(event, MAX_DEPTH):
        return f"body is nested too deeply: at most {MAX_DEPTH} levels"
    return None


def _children(value: Any) -> list[Any]:
    items = value.values() if isinstance(value, dict) else value
    return [item for item in items if isinstance(item, (dict, list))]


def _deeper_than(event: Any, limit: int) -> bool:
    """Whether the body nests deeper than `limit`, level by level (no recursion: the body may be deep)."""
    level, depth = [event], 1
    while level:
        if depth > limit:
            return True
        level, depth = [child for value in level for child in _children(value)], depth + 1
    return False


def _all_text_storable(event: Any) -> bool:
    stack = [event]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            if not all(_storable_text(key) for key in value):
                return False
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and not _storable_text(value):
            return False
    return True


def _storable_text(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate: JSON allows its escape, UTF-8 has no such character
        return False
    return True


# Built once: json.loads with hooks would build a decoder per delivery.
_DECODER = json.JSONDecoder(parse_constant=_no_constant, parse_float=_finite)


def _customer_id(obj: dict[str, Any]) -> str | None:
    if obj.get("object") == "customer":
        return _text(obj.get("id"))
    return _text(obj.get("customer"))


def _subscription_id(obj: dict[str, Any]) -> str | None:
    if obj.get("object") == "subscription":
        return _text(obj.get("id"))
    parent = obj.get("parent")
    if isinstance(parent, dict) and isinstance(parent.get("subscription_details"), dict):
        # Basil-era invoices name their subscription under parent.subscription_details.
        return _text(parent["subscription_details"].get("subscription"))
    return _text(obj.get("subscription"))


def _text(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")  # an expanded reference
    return value if isinstance(value, str) and value else None


# Core tables, not the ORM classes: the intake is the hot path and ORM statement handling costs more than
# the INSERT itself.
EVENTS = StripeEvent.__table__
DIVERGENCES = StripeEventDivergence.__table__


def archive(session: Session, envelope: Envelope, raw: bytes) -> Outcome:
    """Insert the event once (the stored row always wins); keep a different body under the same id aside."""
    payload_hash = hashlib.sha256(raw).hexdigest()
    connection = session.connection()
    stored = connection.execute(
        insert(EVENTS)
        .values(id=envelope.id, stripe_created_at=envelope.created, type=envelope.type,
                api_version=envelope.api_version, stripe_customer_id=envelope.customer_id,
                stripe_subscription_id=envelope.subscription_id, payload=envelope.payload,
                payload_hash=payload_hash, status="pending")
        .on_conflict_do_nothing(index_elements=[EVENTS.c.id])
        .returning(EVENTS.c.id)
    ).scalar()
    if stored is not None:
        return Outcome.STORED
    existing, customer_id = connection.execute(
        select(EVENTS.c.payload_hash, EVENTS.c.stripe_customer_id).where(EVENTS.c.id == envelope.id)).one()
    if existing == payload_hash:
        return Outcome.DUPLICATE
    connection.execute(
        insert(DIVERGENCES)
        .values(stripe_event_id=envelope.id, payload=envelope.payload, payload_hash=payload_hash)
        .on_conflict_do_nothing(index_elements=[DIVERGENCES.c.stripe_event_id, DIVERGENCES.c.payload_hash])
    )
    if customer_id is not None:  # drift from the moment it happens (DESIGN §5), not at the next check
        drift.flag_customer(connection, customer_id, drift.divergence(envelope.id))
    return Outcome.DIVERGENT

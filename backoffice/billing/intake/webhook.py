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

import orjson
from sqlalchemy import Connection, cast, literal, select
from sqlalchemy.dialects.postgresql import JSONB, insert
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
    payload: dict[str, Any]  # as parsed (an integer past 64 bits may be a float): what the archive keeps is `text`
    # The body as JSON text, as Stripe sent it: the archive stores this (jsonb reads it once), not a re-encoding.
    text: str = ""


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
        event, body = _parse(payload)
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
    if isinstance(event.get("created"), float):  # maybe an integer orjson could not hold: read it exactly
        event = _DECODER.decode(body)
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
        text=body,
    )


def _parse(payload: bytes) -> tuple[Any, str]:
    """The body as Python values and as text. orjson reads plain UTF-8 JSON several times faster than json; what
    it refuses (another encoding, NaN, 1e400, a lone surrogate, deep nesting, huge integers) goes to the standard
    parser, which reads it or says exactly what is wrong. orjson reads an integer past 64 bits as a float: that
    costs nothing here, since the archive stores the text and the envelope's one number is re-read exactly
    (`read_envelope`)."""
    try:
        return orjson.loads(payload), payload.decode()
    except (orjson.JSONDecodeError, UnicodeDecodeError):
        pass
    body = payload.decode(json.detect_encoding(payload), "surrogatepass")
    return _DECODER.decode(body), body


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
    (outcome,) = archive_many(session.connection(), [(envelope, raw)])
    return outcome


# One row per delivery, sent for a whole batch in one round trip (psycopg's pipelined executemany): each body goes
# as its own parameter, as text jsonb reads once. (Arrays of bodies would be escaped element by element in Python.)
INSERT_ONE = """
    INSERT INTO stripe_events (id, stripe_created_at, type, api_version, stripe_customer_id, stripe_subscription_id,
                               payload, payload_hash)
    VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s)
    ON CONFLICT (id) DO NOTHING
    RETURNING id"""


def archive_many(connection: Connection, deliveries: Sequence[tuple[Envelope, bytes]]) -> list[Outcome]:
    """Archive a batch of deliveries in the caller's transaction, each as `archive` would alone, in few round trips:
    the INSERTs of all (the first delivery of an id in the batch is the one that may be stored), one read of the
    stored hashes of the ids already there, then the divergences, each kept aside as a single delivery's would be."""
    hashes = [hashlib.sha256(raw).hexdigest() for _, raw in deliveries]
    first: dict[str, int] = {}
    for index, (envelope, _) in enumerate(deliveries):
        first.setdefault(envelope.id, index)
    stored = _insert_returning(connection, [_row(deliveries[index][0], hashes[index]) for index in first.values()])
    known = {row.id: (row.payload_hash, row.stripe_customer_id) for row in connection.execute(
        select(EVENTS.c.id, EVENTS.c.payload_hash, EVENTS.c.stripe_customer_id)
        .where(EVENTS.c.id.in_(sorted(set(first) - stored))))} if len(stored) < len(first) else {}
    outcomes = []
    for index, (envelope, _) in enumerate(deliveries):
        if envelope.id in stored and first[envelope.id] == index:
            outcomes.append(Outcome.STORED)
            continue
        # Stored before this batch, or earlier in it: that row wins.
        winner = known.get(envelope.id) or (hashes[first[envelope.id]], deliveries[first[envelope.id]][0].customer_id)
        if winner[0] == hashes[index]:
            outcomes.append(Outcome.DUPLICATE)
            continue
        _keep_divergence(connection, envelope, hashes[index], winner[1])
        outcomes.append(Outcome.DIVERGENT)
    return outcomes


def _insert_returning(connection: Connection, rows: list[tuple[Any, ...]]) -> set[str]:
    """The ids of the rows that were new, inserted in the connection's transaction."""
    stored: set[str] = set()
    with connection.connection.driver_connection.cursor() as cursor:
        cursor.executemany(INSERT_ONE, rows, returning=True)
        while True:
            row = cursor.fetchone()
            if row is not None:
                stored.add(row[0])
            if not cursor.nextset():
                return stored


def _row(envelope: Envelope, payload_hash: str) -> tuple[Any, ...]:
    """INSERT_ONE's parameters; the body as sent (or as the parsed payload, for an envelope made without it)."""
    return (envelope.id, envelope.created, envelope.type, envelope.api_version, envelope.customer_id,
            envelope.subscription_id, _body_text(envelope), payload_hash)


def _body_text(envelope: Envelope) -> str:
    return envelope.text or json.dumps(envelope.payload)


def _keep_divergence(connection: Connection, envelope: Envelope, payload_hash: str, customer_id: str | None) -> None:
    connection.execute(
        insert(DIVERGENCES)
        .values(stripe_event_id=envelope.id, payload=cast(literal(_body_text(envelope)), JSONB),
                payload_hash=payload_hash)
        .on_conflict_do_nothing(index_elements=[DIVERGENCES.c.stripe_event_id, DIVERGENCES.c.payload_hash])
    )
    if customer_id is not None:  # drift from the moment it happens (DESIGN §5), not at the next check
        drift.flag_customer(connection, customer_id, drift.divergence(envelope.id))

"""Webhook delivery: every event to each endpoint that listens for it, signed like Stripe, from one thread.

Each endpoint has knobs that make delivery as unreliable as a test needs (drop, duplicate, delay, shuffle),
drawn from a seeded random generator so a run can be repeated. Failed attempts (no answer, or not 2xx)
are retried with exponential backoff. One sender thread keeps the order of unshuffled deliveries.
"""
from __future__ import annotations

import hashlib
import heapq
import hmac
import itertools
import json
import logging
import random
import secrets
import string
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from backoffice.stripe_sandbox import loopback

if TYPE_CHECKING:
    from backoffice.stripe_sandbox.sandbox import Sandbox

log = logging.getLogger(__name__)

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"
SECRET_ALPHABET = string.ascii_letters + string.digits
# The window of `shuffle=True`: its batches never fill, they leave when flushed or when they have lingered.
UNBOUNDED = 1 << 62


def new_secret() -> str:
    """Return a fresh signing secret (`whsec_…`); unpredictable, unlike the seeded object ids."""
    return "whsec_" + "".join(secrets.choice(SECRET_ALPHABET) for _ in range(32))


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """Return the `Stripe-Signature` header for `payload` sent at `timestamp` (Unix seconds)."""
    signed = str(timestamp).encode() + b"." + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def listens(endpoint: dict[str, Any], event_type: str) -> bool:
    """Tell whether an endpoint object wants events of this type."""
    wanted = endpoint["enabled_events"]
    return endpoint["status"] == "enabled" and ("*" in wanted or event_type in wanted)


@dataclass
class DeliveryKnobs:
    """How unreliable delivery to one endpoint is.

    drop_rate: fraction of events never sent (lost webhooks; they stay pending in the event log).
    duplicate_rate: fraction of events sent twice.
    delay_seconds: wall-clock wait before an event's first attempt.
    shuffle: False keeps the order; True sends held deliveries in random order when flushed or after
        they linger; a number N ≥ 2 shuffles each batch of N as soon as it is full.
    shuffle_rate: with `shuffle` false, the fraction of deliveries held back (the rest go at once) and sent
        later, in random order, when flushed or after they linger: a few events out of order, as Stripe
        delivers them in no particular order.
    seed: makes which events are dropped or duplicated, and the shuffled order, repeatable. (A batch
        released because it lingered depends on timing; full windows and flushed batches do not.)
    drop_customers: customers whose events are never sent: a lost-webhook history for chosen accounts,
        that only a reconcile against events.list can repair.
    """

    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    delay_seconds: float = 0.0
    shuffle: bool | int = False
    seed: int | None = None
    drop_customers: tuple[str, ...] = ()
    shuffle_rate: float = 0.0

    def __post_init__(self) -> None:
        self.drop_customers = tuple(self.drop_customers)
        for name in ("drop_rate", "duplicate_rate", "shuffle_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.delay_seconds < 0:
            raise ValueError("delay_seconds must not be negative")
        if not isinstance(self.shuffle, bool) and self.shuffle < 0:
            raise ValueError("shuffle must be true, false or a window of at least 2")

    @property
    def window(self) -> int:
        """Return how many deliveries a shuffle batch holds (1: no shuffling)."""
        if isinstance(self.shuffle, bool):
            return UNBOUNDED if self.shuffle else 1
        return max(1, self.shuffle)

    def to_dict(self) -> dict[str, Any]:
        """The knobs as the API and the state file show them (`shuffle_rate` only once it is used)."""
        knobs = asdict(self)
        if not self.shuffle_rate:
            del knobs["shuffle_rate"]
        return knobs


def event_customer(event: dict[str, Any]) -> str | None:
    """Return the customer an event is about (the customer itself for customer events)."""
    obj = event["data"]["object"]
    if obj.get("object") == "customer":
        return obj.get("id")
    customer = obj.get("customer")
    return customer if isinstance(customer, str) else None


@dataclass
class Delivery:
    """One event body on its way to one endpoint."""

    event_id: str
    endpoint_id: str
    payload: bytes
    attempt: int = 1


@dataclass
class EndpointState:
    """What the dispatcher keeps per endpoint beyond the endpoint object: secret, knobs, held batch."""

    secret: str
    knobs: DeliveryKnobs = field(default_factory=DeliveryKnobs)
    held: list[Delivery] = field(default_factory=list)
    held_since: float = 0.0
    # What the knobs did so far: events dropped and duplicated, deliveries held back out of order.
    counts: dict[str, int] = field(default_factory=lambda: {"dropped": 0, "duplicated": 0, "held_back": 0})
    fate: random.Random = field(init=False, repr=False)
    order: random.Random = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.reseed()

    def reseed(self) -> None:
        # Separate streams: which events are dropped must not depend on when shuffle batches are released.
        seed = self.knobs.seed
        self.fate = random.Random(None if seed is None else f"{seed}:fate")
        self.order = random.Random(None if seed is None else f"{seed}:order")

    def copies(self, event: dict[str, Any]) -> int:
        """Draw how many times the next event is sent: 0 (dropped), 1 or 2 (duplicated)."""
        if event_customer(event) in self.knobs.drop_customers:
            return 0
        dropped = self.fate.random() < self.knobs.drop_rate
        duplicated = self.fate.random() < self.knobs.duplicate_rate
        if dropped or duplicated:
            self.counts["dropped" if dropped else "duplicated"] += 1
        return 0 if dropped else 2 if duplicated else 1

    def holds_back(self) -> bool:
        """Draw whether the next delivery waits to go out of order (`shuffle_rate`; never drawn when 0)."""
        held = self.knobs.window == 1 and self.knobs.shuffle_rate > 0 and self.fate.random() < self.knobs.shuffle_rate
        self.counts["held_back"] += held
        return held


class WebhookDispatcher:
    """Knows the endpoints' secrets and knobs, and delivers events to the endpoints from one thread.

    Endpoint objects live in the sandbox's store; this class reads them under the store lock. Lock order
    is always the store lock, then `self.cond`, never the other way round.
    """

    def __init__(self, sandbox: Sandbox):
        self.sandbox = sandbox
        self.endpoints: dict[str, EndpointState] = {}
        # event id → endpoints that have not yet answered it with a 2xx (drives `pending_webhooks`).
        self.outstanding: dict[str, set[str]] = {}
        self.cond = threading.Condition()
        self.queue: list[tuple[float, int, Delivery]] = []
        self.sequence = itertools.count()
        self.in_flight = 0
        self.running = False
        self.thread: threading.Thread | None = None

    # --- endpoints ------------------------------------------------------------------------------------
    def register(self, endpoint_id: str) -> str:
        """Give a new endpoint its signing secret and default knobs; return the secret."""
        state = EndpointState(new_secret())
        with self.cond:  # the sender thread walks `endpoints`
            self.endpoints[endpoint_id] = state
        return state.secret

    def secret(self, endpoint_id: str) -> str:
        return self.endpoints[endpoint_id].secret

    def knobs(self, endpoint_id: str) -> DeliveryKnobs:
        return self.endpoints[endpoint_id].knobs

    def set_knobs(self, endpoint_id: str, knobs: DeliveryKnobs) -> None:
        """Change an endpoint's knobs; the seed restarts its random streams."""
        with self.cond:
            state = self.endpoints[endpoint_id]
            state.knobs = knobs
            state.reseed()
            if state.held and knobs.window == 1 and not knobs.shuffle_rate:
                self._release(state)

    def listeners(self, event_type: str) -> list[dict[str, Any]]:
        """Return the enabled endpoint objects that want events of this type."""
        with self.sandbox.store.lock:
            return [e for e in self.sandbox.store.all("webhook_endpoint")
                    if e["object"] == "webhook_endpoint" and e["id"] in self.endpoints and listens(e, event_type)]

    def count_listeners(self, event_type: str) -> int:
        return len(self.listeners(event_type))

    # --- enqueueing -----------------------------------------------------------------------------------
    def enqueue(self, event: dict[str, Any]) -> None:
        """Queue an event for every endpoint that listens for it, rendered in each endpoint's version."""
        with self.sandbox.store.lock:
            endpoints = self.listeners(event["type"])
            if not endpoints:
                return
            self.outstanding[event["id"]] = {e["id"] for e in endpoints}
            event["pending_webhooks"] = len(endpoints)
            self.sandbox.events.delivered[event["id"]] = False
            payloads = self._payloads(event, endpoints)
        with self.cond:
            for endpoint in endpoints:
                state = self.endpoints[endpoint["id"]]  # listeners() keeps registered endpoints only
                for _ in range(state.copies(event)):
                    self._hold_or_schedule(state, Delivery(event["id"], endpoint["id"], payloads[endpoint["id"]]))
            self.cond.notify_all()

    def redeliver(self, endpoint_id: str, events: list[dict[str, Any]]) -> None:
        """Send stored events to one endpoint now, whatever its knobs say (like `stripe events resend`)."""
        with self.sandbox.store.lock:
            endpoint = self.sandbox.store.get("webhook_endpoint", endpoint_id)
            payloads = [self._payload(event, endpoint.get("api_version")) for event in events]
        with self.cond:
            for event, payload in zip(events, payloads, strict=True):
                self._schedule(Delivery(event["id"], endpoint_id, payload), time.monotonic())
            self.cond.notify_all()

    def _payloads(self, event: dict[str, Any], endpoints: list[dict[str, Any]]) -> dict[str, bytes]:
        by_version: dict[str | None, bytes] = {}
        for endpoint in endpoints:
            version = endpoint.get("api_version")
            if version not in by_version:
                by_version[version] = self._payload(event, version)
        return {endpoint["id"]: by_version[endpoint.get("api_version")] for endpoint in endpoints}

    def _payload(self, event: dict[str, Any], api_version: str | None) -> bytes:
        # Stripe sends webhook bodies pretty-printed with two spaces.
        return json.dumps(self.sandbox.render_event(event, api_version), indent=2).encode()

    def _hold_or_schedule(self, state: EndpointState, delivery: Delivery) -> None:
        held_back = state.holds_back()
        if state.knobs.window == 1 and not held_back:
            self._schedule(delivery, time.monotonic() + state.knobs.delay_seconds)
            return
        if not state.held:
            state.held_since = time.monotonic()
        state.held.append(delivery)
        if not held_back and len(state.held) >= state.knobs.window:
            self._release(state)

    def _release(self, state: EndpointState) -> None:
        """Send a held batch in the endpoint's shuffled order (caller holds `self.cond`)."""
        batch, state.held = state.held, []
        state.order.shuffle(batch)
        due = time.monotonic() + state.knobs.delay_seconds
        for delivery in batch:
            self._schedule(delivery, due)

    def _schedule(self, delivery: Delivery, due: float) -> None:
        heapq.heappush(self.queue, (due, next(self.sequence), delivery))

    # --- the sender thread ----------------------------------------------------------------------------
    def start(self) -> None:
        with self.cond:
            if self.running:
                return
            self.running = True
        self.thread = threading.Thread(target=self._run, name="stripe-sandbox-webhooks", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop sending; deliveries still queued are abandoned (the events stay pending)."""
        with self.cond:
            self.running = False
            self.cond.notify_all()
        if self.thread is not None:
            self.thread.join()
            self.thread = None

    def flush(self) -> None:
        """Release every held shuffle batch now."""
        with self.cond:
            for state in self.endpoints.values():
                if state.held:
                    self._release(state)
            self.cond.notify_all()

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Flush, then wait until nothing is queued, held, retrying or being sent; raise TimeoutError if not."""
        self.flush()
        with self.cond:
            idle = self.cond.wait_for(self._idle, timeout)
        if not idle:
            raise TimeoutError(f"webhook deliveries still pending after {timeout} s")

    def _idle(self) -> bool:
        return not self.queue and self.in_flight == 0 and not any(s.held for s in self.endpoints.values())

    def _run(self) -> None:
        while (delivery := self._next_due()) is not None:
            try:
                self._attempt(delivery)
            except Exception:  # a sandbox bug must not end delivery for everyone
                log.exception("webhook delivery of %s failed unexpectedly", delivery.event_id)
            finally:
                with self.cond:
                    self.in_flight -= 1
                    self.cond.notify_all()

    def _next_due(self) -> Delivery | None:
        """Wait for the next delivery that is due, releasing lingering shuffle batches on the way."""
        linger = self.sandbox.settings.webhook_shuffle_linger_seconds
        with self.cond:
            while self.running:
                now = time.monotonic()
                for state in self.endpoints.values():
                    if state.held and now - state.held_since >= linger:
                        self._release(state)
                if self.queue and self.queue[0][0] <= now:
                    self.in_flight += 1
                    return heapq.heappop(self.queue)[2]
                self.cond.wait(self._wait_time(now, linger))
            return None

    def _wait_time(self, now: float, linger: float) -> float | None:
        deadlines = [state.held_since + linger for state in self.endpoints.values() if state.held]
        if self.queue:
            deadlines.append(self.queue[0][0])
        return max(0.0, min(deadlines) - now) if deadlines else None

    def _attempt(self, delivery: Delivery) -> None:
        target = self._target(delivery.endpoint_id)
        if target is None:
            return  # Stripe stops delivering to a deleted or disabled endpoint too
        url, secret = target
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "Cache-Control": "no-cache",
            # Signed with the real clock at send time, as Stripe does: receivers check it against theirs.
            "Stripe-Signature": sign(delivery.payload, secret, int(time.time())),
        }
        try:
            status = loopback.post(url, delivery.payload, headers, self.sandbox.settings.webhook_timeout_seconds)
        except loopback.NotLoopback as error:  # only a hand-edited state file can get here: never retried
            log.warning("webhook %s not sent: %s", delivery.event_id, error)
            return
        except OSError as error:
            log.info("webhook %s to %s: no answer (%s)", delivery.event_id, url, error)
            status = None
        if status is not None and 200 <= status < 300:
            self._delivered(delivery)
        else:
            self._retry_later(delivery, status)

    def _target(self, endpoint_id: str) -> tuple[str, str] | None:
        """Return the endpoint's URL and secret now, or None if it was deleted or disabled meanwhile."""
        with self.sandbox.store.lock:
            endpoint = self.sandbox.store.find(endpoint_id)
            state = self.endpoints.get(endpoint_id)
            live = endpoint is not None and endpoint["object"] == "webhook_endpoint"
            if state is None or not live or endpoint["status"] != "enabled":
                return None
            return endpoint["url"], state.secret

    def _delivered(self, delivery: Delivery) -> None:
        with self.sandbox.store.lock:
            waiting = self.outstanding.get(delivery.event_id)
            if waiting is None or delivery.endpoint_id not in waiting:
                return  # a duplicate or a resend of something already delivered
            waiting.discard(delivery.endpoint_id)
            self._set_pending(delivery.event_id, len(waiting))
            if not waiting:
                del self.outstanding[delivery.event_id]
                self.sandbox.events.delivered[delivery.event_id] = True
        self.sandbox.changed()

    def _set_pending(self, event_id: str, count: int) -> None:
        index = self.sandbox.events.position.get(event_id)
        if index is not None:
            self.sandbox.events.events[index]["pending_webhooks"] = count

    def _retry_later(self, delivery: Delivery, status: int | None) -> None:
        settings = self.sandbox.settings
        if delivery.attempt >= settings.webhook_max_attempts:
            log.warning("webhook %s to %s given up after %d attempts (last answer: %s)", delivery.event_id,
                        delivery.endpoint_id, delivery.attempt, status)
            return
        backoff = min(settings.webhook_retry_max_seconds,
                      settings.webhook_retry_base_seconds * 2 ** (delivery.attempt - 1))
        delivery.attempt += 1
        with self.cond:
            self._schedule(delivery, time.monotonic() + backoff)
            self.cond.notify_all()

    # --- persistence ----------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Return what must survive a restart: secrets, knobs and what is still undelivered."""
        return {
            "endpoints": {i: {"secret": s.secret, "knobs": s.knobs.to_dict()} for i, s in self.endpoints.items()},
            "outstanding": {event_id: sorted(ids) for event_id, ids in self.outstanding.items()},
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.endpoints = {endpoint_id: EndpointState(saved["secret"], DeliveryKnobs(**saved["knobs"]))
                          for endpoint_id, saved in state["endpoints"].items()}
        self.outstanding = {event_id: set(ids) for event_id, ids in state["outstanding"].items()}

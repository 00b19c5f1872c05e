"""The sandbox as one object: settings, store, clock, event log, webhooks and the API routes."""
from __future__ import annotations

import copy
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from backoffice.stripe_sandbox.clock import Clock
from backoffice.stripe_sandbox.events import EventLog, previous_attributes
from backoffice.stripe_sandbox.store import Store

DEFAULT_API_VERSION = "2025-03-31.basil"


@dataclass
class SandboxSettings:
    """How this sandbox behaves. Currency and VAT come from the caller's configuration."""

    currency: str
    tax_rates: dict[str, Decimal] = field(default_factory=dict)
    api_version: str = DEFAULT_API_VERSION
    secret_key: str = "sk_test_sandbox"
    seed: int | None = None
    start_time: int | None = None
    rate_limit_reads: int | None = None
    rate_limit_writes: int | None = None

    def __post_init__(self) -> None:
        if len(self.currency) != 3 or not self.currency.isalpha():
            raise ValueError(f"currency must be an ISO 4217 code, not {self.currency!r}")
        self.currency = self.currency.lower()
        self.tax_rates = {country.upper(): Decimal(str(rate)) for country, rate in self.tax_rates.items()}


@dataclass(frozen=True)
class RequestContext:
    """The API request a change belongs to; clock-driven changes have none."""

    id: str | None = None
    idempotency_key: str | None = None


NO_REQUEST = RequestContext()
_request: ContextVar[RequestContext] = ContextVar("sandbox_request", default=NO_REQUEST)  # noqa: B039 (frozen)


class Sandbox:
    """A local Stripe account: its objects, its clock, its events and its webhook endpoints."""

    def __init__(self, settings: SandboxSettings):
        from backoffice.stripe_sandbox.webhooks import WebhookDispatcher

        self.settings = settings
        self.store = Store(settings.seed)
        self.clock = Clock(settings.start_time)
        self.events = EventLog()
        self.request_counts: Counter[str] = Counter()
        self.counts_lock = threading.Lock()
        self.webhooks = WebhookDispatcher(self)
        self._unsent: list[dict[str, Any]] | None = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Apply a request's changes and events all together, or none of them; deliver events after."""
        with self.store.lock:
            if self._unsent is not None:
                yield
                return
            length = len(self.events.events)
            self._unsent = []
            try:
                with self.store.transaction():
                    yield
            except BaseException:
                self.events.truncate(length)
                raise
            else:
                for event in self._unsent:
                    self.webhooks.enqueue(event)
            finally:
                self._unsent = None

    # --- time and ids -------------------------------------------------------------------------
    def now(self) -> int:
        return self.clock.now()

    def new_id(self, prefix: str, length: int = 24) -> str:
        return self.store.new_id(prefix, length)

    # --- requests -----------------------------------------------------------------------------
    def begin_request(self, context: RequestContext):
        """Attach the events of the current thread's work to an API request (returns a reset token)."""
        return _request.set(context)

    def end_request(self, token) -> None:
        _request.reset(token)

    def count(self, route: str) -> None:
        with self.counts_lock:
            self.request_counts[route] += 1

    # --- events -------------------------------------------------------------------------------
    def emit(self, event_type: str, obj: dict[str, Any], before: dict[str, Any] | None = None,
             *, created: int | None = None) -> dict[str, Any]:
        """Append the event for a change of `obj` (its state before the change in `before`)."""
        context = _request.get()
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if before is not None:
            data["previous_attributes"] = previous_attributes(before, obj)
        event = {
            "id": self.new_id("evt"),
            "object": "event",
            "api_version": self.settings.api_version,
            "created": created if created is not None else self.now(),
            "data": data,
            "livemode": False,
            "pending_webhooks": self.webhooks.count_listeners(event_type),
            "request": {"id": context.id, "idempotency_key": context.idempotency_key},
            "type": event_type,
        }
        self.events.append(event)
        if self._unsent is not None:
            self._unsent.append(event)
        else:
            self.webhooks.enqueue(event)
        return event

    def render_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """Return an event as the API shows it (in the account's API version)."""
        return copy.deepcopy(event)

    def snapshot(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Note an object's state before changing it: for undo, and for the event's previous_attributes."""
        self.store.touch(obj)
        return copy.deepcopy(obj)

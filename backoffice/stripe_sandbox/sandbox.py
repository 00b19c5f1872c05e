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

from backoffice.stripe_sandbox import versions
from backoffice.stripe_sandbox.clock import Clock
from backoffice.stripe_sandbox.events import EventLog, previous_attributes
from backoffice.stripe_sandbox.store import Store

DEFAULT_API_VERSION = versions.BASIL


@dataclass
class SandboxSettings:
    """How this sandbox behaves. Currency and VAT come from the caller's configuration.

    The rate limits (requests per second; None: unlimited) and webhook timings may be changed while
    the sandbox runs; the sandbox reads them on every use.
    """

    currency: str
    tax_rates: dict[str, Decimal] = field(default_factory=dict)
    api_version: str = DEFAULT_API_VERSION
    secret_key: str = "sk_test_sandbox"
    seed: int | None = None
    start_time: int | None = None
    rate_limit_reads: int | None = None
    rate_limit_writes: int | None = None
    # Webhook delivery: first retry after `webhook_retry_base_seconds`, doubling up to the maximum.
    webhook_retry_base_seconds: float = 1.0
    webhook_retry_max_seconds: float = 300.0
    webhook_max_attempts: int = 8
    webhook_timeout_seconds: float = 10.0
    webhook_shuffle_linger_seconds: float = 0.5
    # Persistence: None keeps the state in memory only.
    state_path: str | None = None
    state_save_delay_seconds: float = 0.2

    def __post_init__(self) -> None:
        if len(self.currency) != 3 or not self.currency.isalpha():
            raise ValueError(f"currency must be an ISO 4217 code, not {self.currency!r}")
        self.currency = self.currency.lower()
        self.tax_rates = {country.upper(): Decimal(str(rate)) for country, rate in self.tax_rates.items()}
        if not versions.is_basil_family(self.api_version):
            raise ValueError(f"api_version must be a basil-or-later Stripe API version (the shapes the sandbox "
                             f"keeps), not {self.api_version!r}")


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
        from backoffice.stripe_sandbox.persistence import StateFile
        from backoffice.stripe_sandbox.webhooks import WebhookDispatcher

        self.settings = settings
        self.store = Store(settings.seed)
        self.clock = Clock(settings.start_time)
        self.events = EventLog()
        self.request_counts: Counter[str] = Counter()
        self.counts_lock = threading.Lock()
        self.webhooks = WebhookDispatcher(self)
        self._unsent: list[dict[str, Any]] | None = None
        self.agenda: Any = None  # the clock's due work (billing.Agenda), built on the first clock move
        self.state_file: StateFile | None = None
        if settings.state_path:
            self.state_file = StateFile(self, settings.state_path, settings.state_save_delay_seconds)
            self.state_file.load()

    # --- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the background work: webhook delivery and state saving."""
        self.webhooks.start()
        if self.state_file is not None:
            self.state_file.start()

    def stop(self) -> None:
        """Stop the background work and write the state one last time."""
        self.webhooks.stop()
        if self.state_file is not None:
            self.state_file.close()

    def changed(self) -> None:
        """Note that the state changed (a successful write request, a delivery): persist it soon."""
        if self.state_file is not None:
            self.state_file.changed()

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

    def render_event(self, event: dict[str, Any], api_version: str | None = None) -> dict[str, Any]:
        """Return an event as the API shows it, or as a webhook endpoint pinned to `api_version` gets it.

        In the event's own version this is the stored event itself, not a copy: copying every event of a
        100-event page costs more than the rest of the request. Callers serialise it under the store lock
        (as the server and the webhook sender do) and never change it; `expand[]` works on a copy.
        """
        if api_version is None or api_version == event["api_version"]:
            return event
        with self.store.lock:
            return versions.render_event(event, api_version, self.store)

    def snapshot(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Note an object's state before changing it: for undo, and for the event's previous_attributes."""
        self.store.touch(obj)
        return copy.deepcopy(obj)

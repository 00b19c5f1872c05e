"""StripeGateway: the one place Backoffice calls Stripe, with a shared rate budget, retries and typed results."""
from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import stripe

from backoffice.stripe_gateway.errors import StripeNotConfigured, StripeUnavailable
from backoffice.stripe_gateway.rate_limit import TokenBucket
from backoffice.stripe_gateway.results import CustomerInfo, EventsPage, PriceInfo, customer_info, price_info
from backoffice.stripe_gateway.retries import failure, is_retryable, retry_delay

PAGE_SIZE = 100
REQUEST_TIMEOUT_SECONDS = 30.0


class StripeGateway:
    """Read Stripe through the official SDK: one bucket token per request, our retries only, typed answers.

    Safe to share between threads: the SDK client keeps a session per thread, and the call counter is locked.
    """

    def __init__(self, secret_key: str | None, api_base: str | None, bucket: TokenBucket, *, max_retries: int = 4,
                 backoff_seconds: float = 0.5, sleep: Callable[[float], None] = time.sleep,
                 request_timeout: float = REQUEST_TIMEOUT_SECONDS):
        if not secret_key:
            raise StripeNotConfigured("STRIPE_SECRET_KEY is not set: Stripe features are off")
        if max_retries < 0:
            raise ValueError(f"max_retries must be 0 or more, not {max_retries}")
        options: dict[str, Any] = {
            "max_network_retries": 0,  # ours are the only retries, each behind a bucket token
            "http_client": stripe.RequestsClient(timeout=request_timeout),
        }
        if api_base:
            options["base_addresses"] = {"api": api_base}
        self._client = stripe.StripeClient(secret_key, **options)
        self.bucket = bucket
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self._sleep = sleep
        self._calls = 0
        self._calls_lock = threading.Lock()

    @property
    def calls(self) -> int:
        """How many HTTP requests this gateway has sent to Stripe (retries and pages included)."""
        return self._calls

    # --- typed reads --------------------------------------------------------------------------------
    def customer(self, customer_id: str) -> CustomerInfo:
        """Fetch a customer; a deleted one comes back with `deleted=True`."""
        return customer_info(self._call(lambda: self._client.v1.customers.retrieve(customer_id)))

    def price(self, price_id: str) -> PriceInfo:
        """Fetch a price with its product, whose metadata may name the plan."""
        return price_info(self._call(lambda: self._client.v1.prices.retrieve(price_id, params={"expand": ["product"]})))

    def prices(self) -> Iterator[PriceInfo]:
        """Yield every price, active or not, with its product, page by page."""
        for price in self._paged(self._client.v1.prices.list, {"expand": ["data.product"]}):
            yield price_info(price)

    def events_page(self, *, created_gte: int | None = None, starting_after: str | None = None,
                    ending_before: str | None = None, limit: int = PAGE_SIZE) -> EventsPage:
        """Fetch one page of `events.list` (newest first), the events as plain dicts for the archive."""
        params: dict[str, Any] = {"limit": limit}
        if created_gte is not None:
            params["created"] = {"gte": created_gte}
        if starting_after is not None:
            params["starting_after"] = starting_after
        if ending_before is not None:
            params["ending_before"] = ending_before
        page = self._call(lambda: self._client.v1.events.list(params=params))
        return EventsPage(events=page["data"], has_more=bool(page["has_more"]))

    def customer_subscriptions(self, customer_id: str) -> list[dict[str, Any]]:
        """Every subscription of the customer, ended ones included, newest first (as Stripe lists them)."""
        return list(self._paged(self._client.v1.subscriptions.list, {"customer": customer_id, "status": "all"}))

    def customer_objects(self, kind: str, customer_id: str) -> list[dict[str, Any]]:
        """Every invoice, credit note or subscription schedule of the customer (`kind` names the list)."""
        lists = {"invoices": self._client.v1.invoices.list, "credit_notes": self._client.v1.credit_notes.list,
                 "subscription_schedules": self._client.v1.subscription_schedules.list}
        return list(self._paged(lists[kind], {"customer": customer_id}))

    def subscriptions_page(self, *, starting_after: str | None = None, limit: int = PAGE_SIZE) -> dict[str, Any]:
        """One page of every subscription on the platform, ended ones included (one request covers `limit`)."""
        params: dict[str, Any] = {"status": "all", "limit": limit}
        if starting_after is not None:
            params["starting_after"] = starting_after
        return self._call(lambda: self._client.v1.subscriptions.list(params=params))

    # --- untyped reads (typed as later work needs them) ------------------------------------------------
    def subscription(self, subscription_id: str) -> dict[str, Any]:
        """Fetch a subscription as plain data."""
        return self._call(lambda: self._client.v1.subscriptions.retrieve(subscription_id))

    def invoice(self, invoice_id: str) -> dict[str, Any]:
        """Fetch an invoice as plain data."""
        return self._call(lambda: self._client.v1.invoices.retrieve(invoice_id))

    def coupon(self, coupon_id: str) -> dict[str, Any]:
        """Fetch a coupon as plain data (basil-era discounts name theirs by id)."""
        return self._call(lambda: self._client.v1.coupons.retrieve(coupon_id))

    def charge(self, charge_id: str) -> dict[str, Any]:
        """Fetch a charge as plain data."""
        return self._call(lambda: self._client.v1.charges.retrieve(charge_id))

    def charge_invoice(self, charge_id: str) -> str | None:
        """The id of the invoice a charge paid, or None when it paid none.

        Since basil a charge no longer names its invoice, and Stripe finds invoice payments by PaymentIntent
        only: a charge's PaymentIntent leads to its invoice payment. A charge without one (an invoice payment
        of type `charge`) is looked for among the payments of its customer's invoices.
        """
        charge = self.charge(charge_id)
        if _ref(charge.get("invoice")):  # the gateway's API version may still name it
            return _ref(charge.get("invoice"))
        intent = _ref(charge.get("payment_intent"))
        if intent:
            page = self._call(lambda: self._client.v1.invoice_payments.list(
                params={"payment": {"type": "payment_intent", "payment_intent": intent}, "limit": 1}))
            return next((_ref(payment.get("invoice")) for payment in page["data"]), None)
        customer = _ref(charge.get("customer"))
        if not customer:
            return None
        for invoice in self._paged(self._client.v1.invoices.list, {"customer": customer, "expand": ["data.payments"]}):
            for payment in (invoice.get("payments") or {}).get("data") or []:
                if _ref((payment.get("payment") or {}).get("charge")) == charge_id:
                    return str(invoice["id"])
        return None

    # --- the request loop ---------------------------------------------------------------------------
    def _paged(self, list_page: Callable[..., stripe.ListObject], params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Yield the objects of every page, each page one call through `_call` (the SDK's auto-paging would
        bypass the bucket and the retries)."""
        starting_after: str | None = None
        while True:
            cursor = {"starting_after": starting_after} if starting_after else {}
            page = self._call(partial(list_page, params={**params, "limit": PAGE_SIZE, **cursor}))
            yield from page["data"]
            if not page["has_more"] or not page["data"]:
                return
            starting_after = page["data"][-1]["id"]

    def _call(self, request: Callable[[], stripe.StripeObject]) -> dict[str, Any]:
        """Send a request behind a bucket token, retrying what may pass later; return the answer as plain JSON data."""
        for attempt in range(self.max_retries + 1):
            self.bucket.acquire()
            with self._calls_lock:
                self._calls += 1
            try:
                # for_json: Stripe's decimal strings stay strings, so the dict is the JSON Stripe sent.
                return request().to_dict(for_json=True)
            except stripe.StripeError as error:
                if not is_retryable(error):
                    raise failure(error) from error
                if attempt == self.max_retries:
                    raise StripeUnavailable(f"Stripe did not answer after {attempt + 1} attempts: {error.user_message or error}",
                                            attempts=attempt + 1) from error
                self._sleep(retry_delay(attempt, self.backoff_seconds, error))
        raise AssertionError("unreachable: the loop returns or raises")


def _ref(value: Any) -> str | None:
    """The id of a reference, expanded or not."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None

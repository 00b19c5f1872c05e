"""Webhook endpoints and delivery. (Placeholder until delivery is built: no endpoints, nothing sent.)"""
from __future__ import annotations

from typing import Any


class WebhookDispatcher:
    """Knows the webhook endpoints and delivers events to them."""

    def __init__(self, sandbox: Any):
        self.sandbox = sandbox

    def count_listeners(self, event_type: str) -> int:
        return 0

    def enqueue(self, event: dict[str, Any]) -> None:
        return None

    def start(self) -> None:
        return None

    def stop(self) -> None:
        return None

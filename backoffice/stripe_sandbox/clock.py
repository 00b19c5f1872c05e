"""The simulated clock, like Stripe's test clocks: time moves only when told to."""
from __future__ import annotations

import time


class Clock:
    """Unix seconds that start at a chosen instant and move forward on request."""

    def __init__(self, start: int | None = None):
        self.frozen_time = int(start if start is not None else time.time())

    def now(self) -> int:
        return self.frozen_time

    def move_to(self, instant: int) -> None:
        """Move forward to `instant` (never backward)."""
        if instant < self.frozen_time:
            raise ValueError("the clock only moves forward")
        self.frozen_time = instant

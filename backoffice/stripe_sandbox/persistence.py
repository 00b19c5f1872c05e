"""The sandbox's state in a JSON file: loaded at start, rewritten atomically after changes and at shutdown.

Saved: every stored object, the id generator's random state (ids keep following the same sequence), the
clock, the event log with its delivery results, and the webhook endpoints' secrets and knobs. Deliveries
still queued at shutdown are not resumed; resend them with the redeliver route if they matter.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backoffice.stripe_sandbox.events import EventLog

if TYPE_CHECKING:
    from backoffice.stripe_sandbox.sandbox import Sandbox

log = logging.getLogger(__name__)

FORMAT = 1


class StateFileError(ValueError):
    """A state file the sandbox cannot load."""


def capture(sb: Sandbox) -> str:
    """Return the sandbox's state as JSON text, taken while no request is changing it."""
    with sb.store.lock:
        return json.dumps({
            "format": FORMAT,
            "store": sb.store.snapshot(),
            "clock": sb.clock.now(),
            "events": sb.events.events,
            "delivered": sb.events.delivered,
            "webhooks": sb.webhooks.state(),
        })


def restore(sb: Sandbox, state: dict[str, Any]) -> None:
    """Replace the sandbox's state with a captured one."""
    if state.get("format") != FORMAT:
        raise StateFileError(f"state format {state.get('format')!r} is not the supported {FORMAT}")
    with sb.store.lock:
        sb.store.restore(state["store"])
        sb.clock.frozen_time = state["clock"]
        event_log = EventLog()
        for event in state["events"]:
            event_log.append(event)
        event_log.delivered = state["delivered"]
        sb.events = event_log
        sb.webhooks.restore(state["webhooks"])


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` so that a reader (or a crash) sees the old file or the new, never half."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # make the rename itself durable
    finally:
        os.close(directory)


class StateFile:
    """Keeps one sandbox's state in a file: `changed()` schedules a save `delay` seconds later (0: now).

    Debouncing coalesces a burst of requests into one write, since a write serialises the whole state.
    """

    def __init__(self, sandbox: Sandbox, path: str | os.PathLike[str], delay: float = 0.2):
        self.sandbox = sandbox
        self.path = Path(path)
        self.delay = delay
        self.dirty = threading.Event()
        self.closing = threading.Event()
        self.thread: threading.Thread | None = None
        self.save_lock = threading.Lock()

    def load(self) -> bool:
        """Restore the sandbox from the file if it exists; tell whether it did."""
        if not self.path.exists():
            return False
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise StateFileError(f"cannot read the sandbox state in {self.path}: {error}") from error
        try:
            restore(self.sandbox, state)
        except (KeyError, TypeError, ValueError) as error:
            raise StateFileError(f"{self.path} does not hold a sandbox state: {error!r}") from error
        return True

    def save(self) -> None:
        """Write the current state now."""
        with self.save_lock:
            self.dirty.clear()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(self.path, capture(self.sandbox))

    def changed(self) -> None:
        if self.delay <= 0:
            self.save()
        else:
            self.dirty.set()

    def start(self) -> None:
        if self.thread is None and self.delay > 0:
            self.closing.clear()
            self.thread = threading.Thread(target=self._run, name="stripe-sandbox-state", daemon=True)
            self.thread.start()

    def close(self) -> None:
        """Stop the saver and write the state a last time."""
        self.closing.set()
        self.dirty.set()  # wake the saver
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        self.save()

    def _run(self) -> None:
        while True:
            self.dirty.wait()
            if self.closing.wait(self.delay):
                return
            try:
                self.save()
            except OSError:
                log.exception("cannot save the sandbox state to %s", self.path)

"""The sandbox's state: every object by id, in creation order per type, with all-or-nothing changes."""
from __future__ import annotations

import copy
import random
import string
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from backoffice.stripe_sandbox.errors import ResourceMissing

ALPHABET = string.ascii_letters + string.digits


class Store:
    """Objects in Stripe's shape, keyed by id. Mutations happen inside `transaction()` under one lock."""

    def __init__(self, seed: int | None = None):
        self.objects: dict[str, dict[str, Any]] = {}
        self.by_type: dict[str, list[str]] = {}
        self.lock = threading.RLock()
        self.random = random.Random(seed)
        self._undo: list[tuple[str, str, Any]] | None = None
        # Ids added or changed since the clock last looked, oldest first (a dict keeps insertion order).
        self._changed: dict[str, None] = {}

    def new_id(self, prefix: str, length: int = 24) -> str:
        """Return a fresh Stripe-looking id such as `cus_…`."""
        while True:
            candidate = f"{prefix}_{''.join(self.random.choice(ALPHABET) for _ in range(length))}"
            if candidate not in self.objects:
                return candidate

    def add(self, obj: dict[str, Any], kind: str | None = None) -> dict[str, Any]:
        """Store a new object (its `object` field names its type unless `kind` is given)."""
        kind = kind or obj["object"]
        self._record("add", obj["id"], kind)
        self.objects[obj["id"]] = obj
        self.by_type.setdefault(kind, []).append(obj["id"])
        return obj

    def get(self, kind: str, object_id: str, *, label: str | None = None, param: str = "id") -> dict[str, Any]:
        """Return the stored object of that type, or raise Stripe's resource_missing."""
        obj = self.objects.get(object_id)
        if obj is None or obj.get("object") != kind:
            raise ResourceMissing(label or kind, object_id, param)
        return obj

    def find(self, object_id: str) -> dict[str, Any] | None:
        return self.objects.get(object_id)

    def all(self, kind: str) -> list[dict[str, Any]]:
        """Return the objects of a type, oldest first."""
        return [self.objects[i] for i in self.by_type.get(kind, ())]

    def touch(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Note an object's state before a change, so a failed request can put it back."""
        self._record("touch", obj["id"], copy.deepcopy(obj))
        return obj

    def take_changed(self) -> list[str]:
        """Return the ids added or changed since the last call (rolled-back ones included), oldest first."""
        with self.lock:
            changed, self._changed = list(self._changed), {}
        return changed

    def _record(self, action: str, object_id: str, payload: Any) -> None:
        self._changed[object_id] = None
        if self._undo is not None:
            self._undo.append((action, object_id, payload))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Apply every change of the block, or none of them when it raises."""
        with self.lock:
            outer = self._undo is not None
            if outer:
                yield
                return
            self._undo = []
            try:
                yield
            except BaseException:
                self._rollback()
                raise
            finally:
                self._undo = None

    def _rollback(self) -> None:
        assert self._undo is not None
        for action, object_id, payload in reversed(self._undo):
            if action == "add":
                self.objects.pop(object_id, None)
                self.by_type[payload].remove(object_id)
            else:
                self.objects[object_id].clear()
                self.objects[object_id].update(payload)

    def snapshot(self) -> dict[str, Any]:
        """Return everything needed to rebuild the store."""
        return {"objects": self.objects, "by_type": self.by_type, "random": self.random.getstate()}

    def restore(self, state: dict[str, Any]) -> None:
        self.objects = state["objects"]
        self.by_type = state["by_type"]
        self._changed = dict.fromkeys(self.objects)
        random_state = state["random"]
        self.random.setstate((random_state[0], tuple(random_state[1]), random_state[2]))

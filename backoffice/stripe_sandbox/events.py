"""The event log: every change as a Stripe event, listed newest first with Stripe's filters."""
from __future__ import annotations

import copy
import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from backoffice.stripe_sandbox.errors import ResourceMissing, parameter_invalid
from backoffice.stripe_sandbox.params import Params, to_int

RETENTION_SECONDS = 30 * 24 * 3600
MAX_LIMIT = 100


def previous_attributes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Return the old values of what changed: hashes diffed key by key, anything else whole."""
    changed: dict[str, Any] = {}
    for key in before.keys() | after.keys():
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict) and old.get("object") != "list":
            changed[key] = previous_attributes(old, new)
        elif isinstance(old, dict) and isinstance(new, dict):
            # A list object (e.g. subscription items): Stripe sends its old `data` whole.
            changed[key] = {"data": copy.deepcopy(old.get("data"))}
        else:
            changed[key] = copy.deepcopy(old)
    return changed


class EventLog:
    """Events in creation order, with indexes for newest-first paging by type and time."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.position: dict[str, int] = {}
        self.by_type: dict[str, list[int]] = {}
        self.delivered: dict[str, bool] = {}

    def append(self, event: dict[str, Any]) -> None:
        if self.events and event["created"] < self.events[-1]["created"]:
            raise ValueError("events must be appended in time order")
        index = len(self.events)
        self.events.append(event)
        self.position[event["id"]] = index
        self.by_type.setdefault(event["type"], []).append(index)

    def truncate(self, length: int) -> None:
        """Forget events appended after `length` (a failed request's)."""
        for event in self.events[length:]:
            self.position.pop(event["id"], None)
            self.by_type[event["type"]].pop()
            if not self.by_type[event["type"]]:
                del self.by_type[event["type"]]
        del self.events[length:]

    def get(self, event_id: str, now: int) -> dict[str, Any]:
        index = self.position.get(event_id)
        if index is None or self.events[index]["created"] < now - RETENTION_SECONDS:
            raise ResourceMissing("event", event_id)
        return self.events[index]

    def list(self, params: Params, now: int, render: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Answer GET /v1/events: newest first, filtered, one page."""
        limit = params.integer("limit", 10, minimum=1, maximum=MAX_LIMIT)
        assert limit is not None
        lower, upper = _created_bounds(params.raw("created"))
        lower = max(lower, now - RETENTION_SECONDS)
        runs = self._candidates(params)
        starting_after = params.text("starting_after")
        ending_before = params.text("ending_before")
        if starting_after and ending_before:
            raise parameter_invalid("ending_before", "You may only specify one of these parameters: starting_after, "
                                    "ending_before.")
        after = self._cursor(starting_after, "starting_after") if starting_after else None
        before = self._cursor(ending_before, "ending_before") if ending_before else None
        windows = [self._window(run, lower, upper, after, before) for run in runs]
        delivery = params.boolean("delivery_success")
        keep = None if delivery is None else (lambda i: self.delivered.get(self.events[i]["id"]) is delivery)
        page, has_more = _page(windows, limit, backwards=before is not None, keep=keep)
        return {
            "object": "list",
            "data": [render(self.events[i]) for i in page],
            "has_more": has_more,
            "url": "/v1/events",
        }

    def _window(self, run: Sequence[int], lower: int, upper: int, after: int | None,
                before: int | None) -> tuple[Sequence[int], int, int]:
        """Bisect one run of event positions (all events, or one type's) to the requested bounds."""
        start = bisect_left(run, lower, key=self._created_key)
        stop = bisect_right(run, upper, lo=start, key=self._created_key)
        if after is not None:
            stop = bisect_left(run, after, lo=start, hi=stop)
        if before is not None:
            start = bisect_right(run, before, lo=start, hi=stop)
        return run, start, stop

    def _created_key(self, index: int) -> int:
        return self.events[index]["created"]

    def _cursor(self, event_id: str, param: str) -> int:
        index = self.position.get(event_id)
        if index is None:
            raise ResourceMissing("event", event_id, param)
        return index

    def _candidates(self, params: Params) -> list[Sequence[int]]:
        """Return the runs of positions to page through: every event, or one run per wanted type."""
        single = params.text("type")
        several = params.array("types")
        if single and several:
            raise parameter_invalid("types", "You may only specify one of these parameters: type, types.")
        patterns = [single] if single else [str(t) for t in several]
        if not patterns or "*" in patterns:
            return [range(len(self.events))]
        names: set[str] = set()
        for pattern in patterns:
            if pattern.endswith("*"):
                names.update(name for name in self.by_type if name.startswith(pattern[:-1]))
            elif pattern in self.by_type:
                names.add(pattern)
        return [self.by_type[name] for name in sorted(names)]


def _page(windows: list[tuple[Sequence[int], int, int]], limit: int, *, backwards: bool,
          keep: Callable[[int], bool] | None) -> tuple[list[int], bool]:
    """Return one page of positions, newest first, and whether more match beyond it.

    The runs are merged lazily from the end the page starts at, so a page costs about `limit` steps
    per run however many events the runs hold (unless `keep` rejects most of them).
    """
    walks = [_walk(run, start, stop, backwards) for run, start, stop in windows]
    merged: Iterable[int] = heapq.merge(*walks, reverse=not backwards)
    if keep is not None:
        merged = filter(keep, merged)
    found = list(islice(merged, limit + 1))
    page = found[:limit]
    if backwards:
        page.reverse()
    return page, len(found) > limit


def _walk(run: Sequence[int], start: int, stop: int, backwards: bool) -> Iterator[int]:
    """Yield run[start:stop] oldest first when paging backwards (ending_before), else newest first."""
    positions = range(start, stop) if backwards else range(stop - 1, start - 1, -1)
    return (run[position] for position in positions)


def _created_bounds(value: Any) -> tuple[int, int]:
    lowest, highest = -(2 ** 62), 2 ** 62
    if value is None or value == "":
        return lowest, highest
    if isinstance(value, str):
        exact = to_int(value, "created")
        return exact, exact
    if not isinstance(value, dict):
        raise parameter_invalid("created", "Invalid created: must be an integer or a hash of gt, gte, lt, lte")
    for op in value:
        if op not in {"gt", "gte", "lt", "lte"}:
            raise parameter_invalid(f"created[{op}]", f"Received unknown parameter: created[{op}]",
                                    code="parameter_unknown")
    lower, upper = lowest, highest
    if "gt" in value:
        lower = max(lower, to_int(value["gt"], "created[gt]") + 1)
    if "gte" in value:
        lower = max(lower, to_int(value["gte"], "created[gte]"))
    if "lt" in value:
        upper = min(upper, to_int(value["lt"], "created[lt]") - 1)
    if "lte" in value:
        upper = min(upper, to_int(value["lte"], "created[lte]"))
    return lower, upper

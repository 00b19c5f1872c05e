"""Routing of API requests to handlers, with Stripe's parameter checks, list paging and `expand[]`."""
from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from backoffice.stripe_sandbox.errors import (
    InvalidRequest,
    ResourceMissing,
    UnknownRoute,
    parameter_invalid,
    parameter_unknown,
)
from backoffice.stripe_sandbox.params import Params

# Parameters every endpoint accepts.
COMMON_PARAMS = {"expand"}
LIST_PARAMS = {"limit", "starting_after", "ending_before"}

Handler = Callable[..., dict[str, Any]]
Lookup = Callable[[str], dict[str, Any] | None]
FieldBuilder = Callable[[dict[str, Any], Lookup], Any]
# Fields Stripe leaves out unless expanded (e.g. `invoice.payments`): (object type, field) → how to build the
# field from the object and the id lookup. Resource modules register theirs with `includable`.
INCLUDABLE: dict[tuple[str, str], FieldBuilder] = {}


@dataclass
class Route:
    """One endpoint: method, path template (`{id}` segments) and the parameters it takes."""

    method: str
    path: str
    handler: Handler
    params: set[str] = field(default_factory=set)
    writes: bool = False
    pattern: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path)
        self.pattern = re.compile(f"^{regex}$")
        self.writes = self.method in {"POST", "DELETE"}

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


class Router:
    """All routes of the sandbox, matched in registration order."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, path: str, params: Iterable[str] = ()) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(Route(method, path, handler, set(params)))
            return handler
        return register

    def extend(self, other: Router) -> None:
        self.routes.extend(other.routes)

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]]:
        # Stripe answers a known path with another method the way it answers an unknown path: 404.
        for route in self.routes:
            found = route.pattern.match(path)
            if found and route.method == method:
                return route, found.groupdict()
        raise UnknownRoute(method, path)


def check_params(route: Route, params: Params) -> None:
    """Refuse parameters the endpoint does not take, as Stripe does."""
    allowed = route.params | COMMON_PARAMS
    for name in params.values:
        if name not in allowed:
            raise parameter_unknown(name)


def paginate(objects: list[dict[str, Any]], params: Params, url: str) -> dict[str, Any]:
    """Return one page of a newest-first list (objects given oldest first), with Stripe's cursors."""
    limit = params.integer("limit", 10, minimum=1, maximum=100)
    assert limit is not None
    newest_first = objects[::-1]
    starting_after = params.text("starting_after")
    ending_before = params.text("ending_before")
    if starting_after and ending_before:
        raise parameter_invalid("ending_before",
                                "You may only specify one of these parameters: starting_after, ending_before.")
    ids = [obj["id"] for obj in newest_first]
    if starting_after:
        if starting_after not in ids:
            raise ResourceMissing("object", starting_after, "starting_after")
        rest = newest_first[ids.index(starting_after) + 1:]
        page, has_more = rest[:limit], len(rest) > limit
    elif ending_before:
        if ending_before not in ids:
            raise ResourceMissing("object", ending_before, "ending_before")
        before = newest_first[:ids.index(ending_before)]
        page, has_more = before[-limit:], len(before) > limit
    else:
        page, has_more = newest_first[:limit], len(newest_first) > limit
    return {"object": "list", "data": [copy.deepcopy(obj) for obj in page], "has_more": has_more, "url": url}


def includable(object_type: str, field_name: str) -> Callable[[FieldBuilder], FieldBuilder]:
    """Register how to build a field that Stripe sends only when `expand[]` names it."""
    def register(builder: FieldBuilder) -> FieldBuilder:
        INCLUDABLE[(object_type, field_name)] = builder
        return builder
    return register


def expand(result: dict[str, Any], paths: list[str], lookup: Lookup) -> dict[str, Any]:
    """Replace ids named by `expand[]` paths (dotted, `data.` for lists) with the objects."""
    if paths:
        result = copy.deepcopy(result)  # handlers may return stored objects: expanding must not change them
    for path in paths:
        if not isinstance(path, str) or not path:
            raise parameter_invalid("expand", "Invalid array: expand must be an array of strings")
        _expand_path(result, path.split("."), lookup, path)
    return result


def _expand_path(node: Any, parts: list[str], lookup: Lookup, path: str) -> None:
    if isinstance(node, list):
        for item in node:
            _expand_path(item, parts, lookup, path)
        return
    if not isinstance(node, dict):
        return
    head, rest = parts[0], parts[1:]
    if head not in node:
        build = INCLUDABLE.get((node.get("object", ""), head))
        if build is None:
            raise InvalidRequest(f"This property cannot be expanded ({path}).", param="expand")
        node[head] = build(node, lookup)
    value = node[head]
    if isinstance(value, str):
        node[head] = value = _expanded(value, lookup, path)
    elif isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        # A list of ids (e.g. `subscription.discounts`) expands item by item.
        node[head] = value = [_expanded(item, lookup, path) for item in value]
    if rest:
        _expand_path(value, rest, lookup, path)


def _expanded(object_id: str, lookup: Lookup, path: str) -> dict[str, Any]:
    found = lookup(object_id)
    if found is None:
        raise InvalidRequest(f"This property cannot be expanded ({path}).", param="expand")
    return copy.deepcopy(found)

"""Request parameters: Stripe's nested form encoding (`a[b][0][c]=v`) and typed readers."""
from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

from backoffice.stripe_sandbox.errors import InvalidRequest, parameter_invalid, parameter_missing

_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_PART = re.compile(r"\[([^\[\]]*)\]")


def decode(query: str) -> dict[str, Any]:
    """Decode a form-encoded body or query string into nested dicts and lists."""
    result: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        match = _KEY.match(key)
        if match is None:
            raise InvalidRequest(f"Invalid parameter name: {key}", code="parameter_invalid", param=key)
        path = [match.group(1), *_PART.findall(match.group(2))]
        _assign(result, path, value, key)
    return _listify(result)


def _assign(container: dict[str, Any], path: list[str], value: str, raw_key: str) -> None:
    node = container
    for index, part in enumerate(path):
        last = index == len(path) - 1
        if part == "":
            # `a[]=x`: append to a list, kept as a dict keyed by arrival order until _listify.
            part = str(len(node))
        if last:
            if isinstance(node.get(part), dict):
                raise InvalidRequest(f"Invalid value for {raw_key}: it is also a hash.", param=raw_key)
            node[part] = value
            return
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise InvalidRequest(f"Invalid value for {raw_key}: {path[0]} is not a hash.", param=raw_key)
        node = child


def _listify(value: Any) -> Any:
    """Turn dicts whose keys are all 0..n-1 into lists, recursively."""
    if not isinstance(value, dict):
        return value
    converted = {key: _listify(item) for key, item in value.items()}
    if converted and all(key.isdigit() for key in converted):
        indexes = sorted(int(key) for key in converted)
        if indexes == list(range(len(indexes))):
            return [converted[str(i)] for i in indexes]
    return converted


class Params:
    """Typed access to one request's parameters, remembering which ones were read."""

    def __init__(self, values: dict[str, Any]):
        self.values = values

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def raw(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def text(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value is None:
            if required:
                raise parameter_missing(name)
            return default
        if not isinstance(value, str):
            raise parameter_invalid(name, f"Invalid string: {name} must be a string")
        return value

    def integer(self, name: str, default: int | None = None, *, required: bool = False,
                minimum: int | None = None, maximum: int | None = None) -> int | None:
        value = self.values.get(name)
        if value is None or value == "":
            if required:
                raise parameter_missing(name)
            return default
        return to_int(value, name, minimum=minimum, maximum=maximum)

    def boolean(self, name: str, default: bool | None = None) -> bool | None:
        value = self.values.get(name)
        if value is None:
            return default
        return to_bool(value, name)

    def hash(self, name: str) -> dict[str, Any] | None:
        value = self.values.get(name)
        if value is None or value == "":
            return None if value is None else {}
        if not isinstance(value, dict):
            raise parameter_invalid(name, f"Invalid object: {name} must be a hash")
        return value

    def array(self, name: str) -> list[Any]:
        value = self.values.get(name)
        if value is None or value == "":
            return []
        if isinstance(value, dict):
            # Stripe accepts `items[0][price]`-style arrays only; a hash here is a client bug.
            raise parameter_invalid(name, f"Invalid array: {name} must be an array")
        if not isinstance(value, list):
            return [value]
        return value

    def metadata(self, name: str = "metadata") -> dict[str, str] | None:
        value = self.values.get(name)
        if value is None:
            return None
        if value == "":
            return {}
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise parameter_invalid(name, "Invalid metadata: metadata must be a hash of strings")
        return value


def to_int(value: Any, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Parse an integer parameter as Stripe does, with its error on failure."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise parameter_invalid(name, f"Invalid integer: {value}", code="parameter_invalid_integer")
    try:
        number = int(value)
    except ValueError:
        raise parameter_invalid(name, f"Invalid integer: {value}", code="parameter_invalid_integer") from None
    if minimum is not None and number < minimum:
        raise parameter_invalid(name, f"This value must be greater than or equal to {minimum}.")
    if maximum is not None and number > maximum:
        raise parameter_invalid(name, f"This value must be less than or equal to {maximum}.")
    return number


def to_bool(value: Any, name: str) -> bool:
    """Parse a boolean parameter as Stripe does."""
    if value in ("true", True):
        return True
    if value in ("false", False):
        return False
    raise parameter_invalid(name, f"Invalid boolean: {value}")

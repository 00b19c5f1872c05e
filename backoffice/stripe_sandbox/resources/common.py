"""Helpers shared by the resource modules."""
from __future__ import annotations

from typing import Any

from backoffice.stripe_sandbox.params import Params


def apply_metadata(obj: dict[str, Any], params: Params) -> None:
    """Merge `metadata` as Stripe does: an empty string clears a key, `metadata=""` clears all."""
    metadata = params.metadata()
    if metadata is None:
        return
    if params.raw("metadata") == "":
        obj["metadata"] = {}
        return
    merged = dict(obj.get("metadata") or {})
    for key, value in metadata.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    obj["metadata"] = merged


def deleted(obj: dict[str, Any]) -> dict[str, Any]:
    """Return Stripe's answer to a DELETE."""
    return {"id": obj["id"], "object": obj["object"], "deleted": True}


def create(sb: Any, obj: dict[str, Any], params: Params) -> dict[str, Any]:
    """Finish a new object: apply its metadata, store it, and emit `<type>.created`."""
    apply_metadata(obj, params)
    sb.store.add(obj)
    sb.emit(f"{obj['object']}.created", obj)
    return obj

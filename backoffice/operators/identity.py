"""Operator identity as the authenticating proxy describes it (Easy-Auth-style headers)."""
from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    """Who the proxy says is signed in, and whether that makes them an admin."""

    principal_id: str
    name: str
    display_name: str
    groups: tuple[str, ...]
    is_admin: bool


def parse_principal_claims(encoded: str | None) -> list[tuple[str, str]] | None:
    """Return the (type, value) claims of a base64 JSON principal: none when there is no principal, None when it
    is malformed."""
    if not encoded or not encoded.strip():
        return []
    try:
        padded = encoded.strip() + "=" * (-len(encoded.strip()) % 4)
        document = json.loads(base64.b64decode(padded, validate=True).decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        return None
    claims = document.get("claims") if isinstance(document, dict) else None
    if not isinstance(claims, list):
        return None
    return [
        (claim["typ"], claim["val"])
        for claim in claims
        if isinstance(claim, dict) and isinstance(claim.get("typ"), str) and isinstance(claim.get("val"), str)
    ]


def identity_from_headers(
    headers: Mapping[str, str],
    *,
    name_header: str,
    id_header: str,
    principal_header: str,
    admins_group_id: str | None,
) -> Identity | None:
    """Build the identity from the proxy's headers, or None when the principal name is absent or the principal
    is malformed (a proxy that sends claims sends them whole: anything else is not the proxy speaking)."""
    name = (headers.get(name_header) or "").strip()
    if not name:
        return None
    claims = parse_principal_claims(headers.get(principal_header))
    if claims is None:
        return None
    groups = tuple(value for kind, value in claims if kind == "groups")
    display_name = next((value for kind, value in claims if kind == "name" and value.strip()), name)
    principal_id = (headers.get(id_header) or "").strip() or name
    return Identity(
        principal_id=principal_id,
        name=name,
        display_name=display_name,
        groups=groups,
        # Closed by default: with no admins group configured nobody is an admin.
        is_admin=bool(admins_group_id) and admins_group_id in groups,
    )


def encode_principal(claims: list[tuple[str, str]]) -> str:
    """Encode claims the way the proxy does; used by the development login and tests."""
    document = {
        "auth_typ": "aad",
        "name_typ": "name",
        "role_typ": "roles",
        "claims": [{"typ": kind, "val": value} for kind, value in claims],
    }
    return base64.b64encode(json.dumps(document).encode("utf-8")).decode("ascii")

"""Stripe's own samples, read from ../shared at test time (or BACKOFFICE_STRIPE_SAMPLES), never copied here."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest


class StripeSamples:
    """The sample objects of stripe/openapi's fixtures3.json and the supabase event envelopes."""

    def __init__(self, root: Path):
        self.root = root
        self.resources: dict[str, Any] = json.loads((root / "stripe-openapi" / "fixtures3.json").read_text())[
            "resources"]

    def envelope(self, name: str) -> dict[str, Any]:
        """Return a supabase-stripe-sync-engine event envelope (API version 2020-03-02) by file stem."""
        return json.loads((self.root / "stripe-fixtures" / "supabase-stripe-sync-engine" / f"{name}.json").read_text())


def load_samples() -> StripeSamples:
    """Return the samples, or skip the test with the reason when this checkout has none beside it."""
    root = Path(os.environ.get("BACKOFFICE_STRIPE_SAMPLES") or Path(__file__).resolve().parents[2] / "shared")
    if not (root / "stripe-openapi" / "fixtures3.json").exists():
        pytest.skip(f"Stripe samples not found under {root} (set BACKOFFICE_STRIPE_SAMPLES to the shared folder)")
    return StripeSamples(root)

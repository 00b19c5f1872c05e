"""Static files under versioned URLs, cached for a year: every page load used to revalidate each stylesheet and
script (a round trip per file before the first card could ask for its data).

`url_for('static', filename=…)` adds `v=<digest of the file>`, so a changed file gets a new URL; a request that
names a version is answered as immutable. Without `v` (a URL written by hand) the file is revalidated as before.
"""
from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import Any

from flask import Flask, Response, request

YEAR = 365 * 24 * 3600


def init_app(app: Flask) -> None:
    folder = Path(app.static_folder or "")

    @cache
    def digest(path: Path, modified: int) -> str:  # keyed by the modification time: an edited file gets a new URL
        return hashlib.sha256(path.read_bytes()).hexdigest()[:12]

    def version(filename: str) -> str | None:
        path = folder / filename
        try:
            return digest(path, path.stat().st_mtime_ns)
        except OSError:  # a missing file answers 404 with or without a version
            return None

    @app.url_defaults
    def add_version(endpoint: str, values: dict[str, Any]) -> None:
        if endpoint == "static" and "v" not in values and (found := version(values.get("filename", ""))):
            values["v"] = found

    @app.after_request
    def cache_versioned(response: Response) -> Response:
        if request.endpoint == "static" and request.args.get("v") and response.status_code == 200:
            response.cache_control.no_cache = None
            response.cache_control.public = True
            response.cache_control.max_age = YEAR
            response.cache_control.immutable = True
        return response

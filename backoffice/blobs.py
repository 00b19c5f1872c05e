"""Blob storage for tenant logos and user avatars: files under one directory, addressed by key."""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

KEY = re.compile(r"^[a-z0-9][a-z0-9_-]*(/[a-z0-9][a-z0-9_.-]*)+$")
# The file systems we run on refuse a longer file name (NAME_MAX), with an OSError rather than "not found".
MAX_NAME_LENGTH = 255


class BlobStore:
    """Store and read blobs by key (`logos/ten_x.png`); keys never escape the directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        if not KEY.match(key) or ".." in key or any(len(part) > MAX_NAME_LENGTH for part in key.split("/")):
            raise ValueError(f"invalid blob key {key!r}")
        return self.root / key

    def put(self, key: str, data: bytes) -> str:
        """Write a blob atomically and return its key."""
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, target)
        return key

    def get(self, key: str) -> bytes | None:
        """Return a blob's bytes, or None when there is none."""
        try:
            return self.path(key).read_bytes()
        except (FileNotFoundError, ValueError):
            return None

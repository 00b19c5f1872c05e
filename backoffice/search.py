"""Search text as every list takes it: trimmed, lower-cased, bounded, and matched literally."""
from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement

MAX_SEARCH_LENGTH = 100


class SearchTooLong(ValueError):
    """A search longer than MAX_SEARCH_LENGTH characters."""


def normalize(text: str | None) -> str | None:
    """Return the search trimmed and lower-cased, None when empty; raise SearchTooLong past the limit."""
    cleaned = (text or "").strip()
    if len(cleaned) > MAX_SEARCH_LENGTH:
        raise SearchTooLong(f"search is {len(cleaned)} characters; at most {MAX_SEARCH_LENGTH}")
    return cleaned.lower() or None


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def literal_pattern(text: str) -> str:
    """Return a LIKE pattern that finds `text` anywhere, with `%`, `_` and `\\` taken literally."""
    return f"%{_escaped(text)}%"


def contains(column: ColumnElement[Any], text: str) -> ColumnElement[bool]:
    """Case-insensitive "column contains text" (a trigram index serves it)."""
    return column.ilike(literal_pattern(text), escape="\\")


def starts_with(column: ColumnElement[Any], text: str) -> ColumnElement[bool]:
    """"column starts with text", taken literally (a text_pattern_ops index on the column serves it)."""
    return column.like(f"{_escaped(text)}%", escape="\\")

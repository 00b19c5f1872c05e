"""Search text as every list takes it: trimmed, lower-cased, bounded, and matched literally."""
from __future__ import annotations

import re
from typing import Any

from sqlalchemy import ColumnElement

MAX_SEARCH_LENGTH = 100

# An id pasted from Stripe or from our own tables: a lower-case prefix, an underscore, then letters and digits
# (`cus_NffrFeUfNV2Hib`, `sub_sched_…`, `ten_…`), with a digit or a capital in the tail so that a name written
# with underscores (`fjord_consulting`) stays a name. Stripe's ids are case-sensitive: such a search keeps its case.
_ID_SHAPE = re.compile(r"[a-z]{2,10}(?:_[a-z]{2,10})*_(?=[a-z_]*[A-Z0-9])[A-Za-z0-9_]+")
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class SearchTooLong(ValueError):
    """A search longer than MAX_SEARCH_LENGTH characters."""


def normalize(text: str | None) -> str | None:
    """Return the search trimmed and lower-cased, None when empty; raise SearchTooLong past the limit."""
    cleaned = (text or "").strip()
    if len(cleaned) > MAX_SEARCH_LENGTH:
        raise SearchTooLong(f"search is {len(cleaned)} characters; at most {MAX_SEARCH_LENGTH}")
    if looks_like_id(cleaned):
        return cleaned
    return cleaned.lower() or None


def looks_like_id(text: str) -> bool:
    """Tell whether the search is a whole id (Stripe's or ours), which lists look up by equality."""
    return _ID_SHAPE.fullmatch(text) is not None


def looks_like_email(text: str) -> bool:
    """Tell whether the search is a whole email address, which lists look up by equality."""
    return _EMAIL_SHAPE.fullmatch(text) is not None


def is_exact(text: str | None) -> bool:
    """Tell whether the search names one thing (an id or an address) rather than a fragment of a name."""
    return text is not None and (looks_like_id(text) or looks_like_email(text))


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

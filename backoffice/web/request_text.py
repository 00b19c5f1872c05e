"""Text a request carries: control characters are refused with a 400 before any view reads them.

PostgreSQL cannot store or even compare a NUL in text (psycopg raises DataError, which would be a 500), and no
other control character belongs in an id, a search or a reason either. Checked once for every route here rather
than in each parser, so a new route or parameter is covered without a line of its own. Line breaks and tabs
stay allowed in a form's fields: a reason is typed into a textarea.
"""
from __future__ import annotations

import re
from collections.abc import Iterable

from flask import Flask, abort, request
from flask_babel import gettext as _

# C0 controls but tab, line feed and carriage return; DEL; the C1 controls.
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Query strings and paths never need tab or line breaks either.
CONTROL_OR_BREAK = re.compile(r"[\x00-\x1f\x7f-\x9f]")
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _first_bad(pairs: Iterable[tuple[str, str]], pattern: re.Pattern[str]) -> str | None:
    for name, value in pairs:
        if pattern.search(name) or pattern.search(value):
            return name
    return None


def refuse_control_characters() -> None:
    """Answer 400, naming the parameter, when the path, the query string or a form holds a control character."""
    arguments = ((name, value) for name, value in (request.view_args or {}).items() if isinstance(value, str))
    where = _first_bad(arguments, CONTROL_OR_BREAK) or _first_bad(request.args.items(multi=True), CONTROL_OR_BREAK)
    if where is None and request.mimetype in FORM_TYPES:
        where = _first_bad(request.form.items(multi=True), CONTROL)
    if where is not None:
        abort(400, description=_("%(name)s contains a control character (such as a NUL byte); remove it and try "
                                 "again.", name=CONTROL_OR_BREAK.sub("?", where)[:50]))


def init_app(app: Flask) -> None:
    """Check every request's text; registered after sign-in, so a signed-out visitor is sent to sign in first."""
    app.before_request(refuse_control_characters)

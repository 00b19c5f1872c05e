"""/search: the shell's global search, a page of its own whose results partial htmx swaps in as the operator types."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, current_app, request
from flask_babel import gettext as _

from backoffice import search
from backoffice.extensions import db
from backoffice.read import global_search
from backoffice.web.htmx import render_page_or_partial, swap_target

bp = Blueprint("search", __name__)

# The shell box's results element (layout/_search_box.html): results swapped there are its combobox's listbox.
SHELL_RESULTS = "global-search-results"


def _query() -> str | None:
    try:
        return search.normalize(request.args.get("q"))
    except search.SearchTooLong:
        abort(400, description=_("The search is too long: at most %(max)d characters.", max=search.MAX_SEARCH_LENGTH))


@bp.get("/search")
def index():
    """Accounts, users, billing events and invoices matching `q`, a few of each with a link to the whole list."""
    query = _query()
    config = current_app.config
    results = global_search.search_everything(
        db.session, query, plan_order=tuple(config["PLAN_ORDER"]), billing=bool(config["PUBLIC_SUBSCRIPTION_ENABLED"]),
        now=datetime.now(UTC))
    return render_page_or_partial("search/index.html", "search/_results.html", results=results,
                                  q=request.args.get("q", ""), min_length=global_search.MIN_LENGTH,
                                  listbox=swap_target() == SHELL_RESULTS)

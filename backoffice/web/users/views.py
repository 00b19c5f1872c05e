"""/users: the list of every account's users, its side pane, a person's page and its tabs."""
from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, abort, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from backoffice.accounts import people
from backoffice.accounts.models import USER_ROLES
from backoffice.billing.lists import lookup
from backoffice.extensions import db
from backoffice.web.csv_export import csv_response
from backoffice.web.formatting import ROLE_LABELS
from backoffice.web.htmx import is_partial_request, render_list, render_page_or_partial
from backoffice.web.listing import ListParams, ListSpec, fetch_or_400

bp = Blueprint("users", __name__)

TABS = ("overview", "logins", "sessions")
ACTIVITY_LABELS = {"24h": _l("Active in the last 24 hours"), "7d": _l("Active in the last 7 days"),
                   "30d": _l("Active in the last 30 days"), "90d": _l("Active in the last 90 days"),
                   "inactive": _l("Inactive for over 30 days")}
CSV_HEADER = ("id", "email", "first_name", "last_name", "name", "account_id", "account", "role", "email_confirmed",
              "last_seen_at", "created_at")
# The overview's login history: the last 30 days, newest first, this many at most (the Logins tab has them all).
OVERVIEW_LOGINS = 50
LIST_SPEC = ListSpec(endpoint="users.index", csv_endpoint="users.export", default_sort="-last_seen",
                     sorts=people.USER_SORTS, multi={"role": USER_ROLES, "activity": people.ACTIVITIES})
# A person's logins and sessions: one order (newest first), pages and cursors.
SECTION_SPEC = ListSpec(endpoint="users.section", sorts=("date",), default_sort="-date")


def user_filter(params: ListParams) -> people.UserFilter:
    return people.UserFilter(search=params.search, roles=params.values("role"), activities=params.values("activity"),
                             now=datetime.now(UTC), accounts=lookup.accounts_named(db.session, params.search))


def _person(user_id: str) -> people.Person:
    person = people.get_person(db.session, user_id, datetime.now(UTC))
    if person is None:
        abort(404, description=_("No user %(id)s.", id=user_id))
    return person


@bp.get("/users")
def index():
    """The users list: search, role and activity filters, sort and page from the URL; the pane when `pane` names a
    user."""
    params = ListParams.from_request(LIST_SPEC)
    page = fetch_or_400(lambda: people.list_users(
        db.session, user_filter(params), sort=params.sort, descending=params.descending, page=params.page,
        per_page=params.per_page, after=params.after))
    pane_id = request.args.get("pane")
    pane = _person(pane_id) if pane_id and not is_partial_request() else None
    return render_list("users/index.html", "users/_results.html", params.current_url(), params=params, page=page,
                       pane=pane, roles=USER_ROLES, role_labels=ROLE_LABELS, activities=people.ACTIVITIES,
                       activity_labels=ACTIVITY_LABELS)


@bp.get("/users.csv")
def export():
    """Every user the list's filters match, in its order, as CSV."""
    params = ListParams.from_request(LIST_SPEC)
    rows = people.stream_users(db.session, user_filter(params), sort=params.sort, descending=params.descending)

    def values(row: people.UserRow) -> list[object]:
        return [row.id, row.email, row.first_name, row.last_name, row.display_name, row.tenant_id, row.tenant_name,
                row.role, row.email_confirmed, row.last_seen_at, row.created_at]

    return csv_response("users.csv", CSV_HEADER, (values(row) for row in rows))


@bp.get("/users/<user_id>/pane")
def pane(user_id: str):
    """The side pane of one person; without htmx, the list with the pane open."""
    if not is_partial_request():
        return redirect(url_for(".index", pane=user_id), 303)
    return render_page_or_partial("users/index.html", "users/_pane.html", pane=_person(user_id))


def _tab_context(person: people.Person, tab: str) -> dict[str, object]:
    """The data of one tab of the person's page."""
    if tab == "overview":
        since = datetime.now(UTC) - people.RECENT_LOGINS
        return {"logins": people.list_logins(db.session, person.email, since=since, per_page=OVERVIEW_LOGINS)}
    params = ListParams.from_request(SECTION_SPEC)
    if tab == "logins":
        page = fetch_or_400(lambda: people.list_logins(db.session, person.email, page=params.page,
                                                       per_page=params.per_page, after=params.after))
    else:
        page = fetch_or_400(lambda: people.list_sessions(db.session, person.user_ids, page=params.page,
                                                         per_page=params.per_page, after=params.after))
    return {"params": params, "page": page}


def _detail(user_id: str, tab: str):
    person = _person(user_id)
    context = _tab_context(person, tab)
    canonical = context["params"].current_url() if "params" in context else request.path
    tab_urls = {name: tab_url(user_id, name) for name in TABS}
    return render_list("users/detail.html", "users/_tab.html", canonical, person=person, tab=tab, tabs=TABS,
                       tab_urls=tab_urls, **context)


@bp.get("/users/<user_id>")
def detail(user_id: str):
    """The person's page, Overview tab: their accounts and their sign-ins of the last 30 days."""
    return _detail(user_id, "overview")


@bp.get("/users/<user_id>/<any(logins, sessions):section>")
def section(user_id: str, section: str):
    """The person's page at its Logins (every sign-in, paged) or Sessions (across their accounts) tab."""
    return _detail(user_id, section)


def tab_url(user_id: str, tab: str) -> str:
    """The URL of one tab of the person's page (each tab is a URL of its own)."""
    if tab == "overview":
        return url_for(".detail", user_id=user_id)
    return url_for(".section", user_id=user_id, section=tab)

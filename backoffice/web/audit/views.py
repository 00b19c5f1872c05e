"""/audit: the operator audit log, every admin action with who, when, target, reason and result."""
from __future__ import annotations

from flask import Blueprint

from backoffice.extensions import db
from backoffice.operators import queries
from backoffice.operators.models import OPERATOR_ACTIONS
from backoffice.web.csv_export import csv_response
from backoffice.web.formatting import OPERATOR_ACTION_LABELS
from backoffice.web.htmx import render_list
from backoffice.web.listing import ListParams, ListSpec, fetch_or_400

bp = Blueprint("audit", __name__)

LIST = ListSpec("audit.index", sorts=("at",), default_sort="-at", multi={"action": OPERATOR_ACTIONS},
                references=("operator", "account"), csv_endpoint="audit.export")
CSV_HEADER = ("at", "operator_id", "operator", "action", "account_id", "account", "reason", "parameters", "result")


def audit_filter(params: ListParams) -> queries.AuditFilter:
    return queries.AuditFilter(search=params.search, actions=params.values("action"),
                               operator_id=params.choice("operator"), tenant_id=params.choice("account"))


@bp.get("/audit")
def index():
    """The audit log, newest first, filtered by action, operator, account or a search."""
    params = ListParams.from_request(LIST)
    page = fetch_or_400(lambda: queries.list_actions(db.session, audit_filter(params), descending=params.descending,
                                                     page=params.page, per_page=params.per_page, after=params.after))
    return render_list("audit/index.html", "audit/_results.html", params.current_url(), params=params, page=page,
                       actions=OPERATOR_ACTIONS, action_labels=OPERATOR_ACTION_LABELS)


@bp.get("/audit.csv")
def export():
    """Every entry the filters match, as CSV."""
    params = ListParams.from_request(LIST)
    rows = ((e.at, e.operator_id, e.operator_name, e.action, e.tenant_id, e.tenant_name, e.reason, e.parameters,
             e.result or None)
            for e in queries.stream_actions(db.session, audit_filter(params), descending=params.descending))
    return csv_response("audit.csv", CSV_HEADER, rows)

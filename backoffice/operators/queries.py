"""Reads of the operator audit log: who did what to which account, when, why, with what result."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from backoffice import search
from backoffice.accounts.models import Tenant
from backoffice.operators.models import Operator, OperatorAction
from backoffice.paging import Page, SortKey, fetch_page, stream_rows, with_keys

ACTIONS = OperatorAction.__table__
OPERATORS = Operator.__table__
TENANTS = Tenant.__table__


@dataclass(frozen=True)
class AuditFilter:
    """Narrow the log: a search over operator, account and reason; actions (OR); one operator; one account."""

    search: str | None = None
    actions: tuple[str, ...] = ()
    operator_id: str | None = None
    tenant_id: str | None = None


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    operator_id: str
    operator_name: str
    operator_email: str | None
    action: str
    tenant_id: str | None
    tenant_name: str | None
    reason: str
    parameters: dict[str, Any]
    result: dict[str, Any] | None


def _query(criteria: AuditFilter) -> Select:
    query = (select(ACTIONS.c.id, ACTIONS.c.at, ACTIONS.c.operator_id, OPERATORS.c.name, OPERATORS.c.email,
                    ACTIONS.c.action, ACTIONS.c.target_tenant_id, TENANTS.c.name.label("tenant_name"), ACTIONS.c.reason,
                    ACTIONS.c.parameters, ACTIONS.c.result)
             .select_from(ACTIONS.join(OPERATORS, OPERATORS.c.id == ACTIONS.c.operator_id)
                          .outerjoin(TENANTS, TENANTS.c.id == ACTIONS.c.target_tenant_id)))
    if criteria.search:
        query = query.where(or_(*(search.contains(column, criteria.search) for column in
                                  (OPERATORS.c.name, OPERATORS.c.email, TENANTS.c.name, ACTIONS.c.reason))))
    if criteria.actions:
        query = query.where(ACTIONS.c.action.in_(criteria.actions))
    if criteria.operator_id:
        query = query.where(ACTIONS.c.operator_id == criteria.operator_id)
    if criteria.tenant_id:
        query = query.where(ACTIONS.c.target_tenant_id == criteria.tenant_id)
    return query


def _keys(descending: bool) -> list[SortKey]:
    return [SortKey(ACTIONS.c.at, descending), SortKey(ACTIONS.c.id, descending)]


def _to_entry(row: Any) -> AuditEntry:
    return AuditEntry(*row[:len(AuditEntry.__dataclass_fields__)])


def list_actions(session: Session, criteria: AuditFilter, *, descending: bool = True, page: int = 1,
                 per_page: int = 25, after: str | None = None) -> Page[AuditEntry]:
    """One page of the audit log, newest first by default."""
    keys = _keys(descending)
    return fetch_page(session, with_keys(_query(criteria), keys), keys, page=page, per_page=per_page, after=after,
                      to_row=_to_entry)


def stream_actions(session: Session, criteria: AuditFilter, *, descending: bool = True) -> Iterator[AuditEntry]:
    keys = _keys(descending)
    return stream_rows(session, with_keys(_query(criteria), keys), keys, to_row=_to_entry)

"""The audit log (DESIGN §4.12): every admin action, with its reason, in append-only `operator_actions`."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from backoffice.operators.models import OperatorAction


def record_action(session: Session, operator_id: str, action: str, reason: str, *, tenant_id: str | None = None,
                  parameters: dict[str, Any] | None = None, result: dict[str, Any] | None = None) -> OperatorAction:
    """Append one audited action (the caller commits with the action's own writes)."""
    entry = OperatorAction(operator_id=operator_id, action=action, target_tenant_id=tenant_id, reason=reason.strip(),
                           parameters=parameters or {}, result=result)
    session.add(entry)
    session.flush()
    return entry

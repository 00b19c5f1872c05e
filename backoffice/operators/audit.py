"""The audit log (DESIGN §4.12): every admin action, with its reason, in append-only `operator_actions`."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from backoffice.operators.models import MAX_REASON_LENGTH, OperatorAction


def record_action(session: Session, operator_id: str, action: str, reason: str, *, tenant_id: str | None = None,
                  parameters: dict[str, Any] | None = None, result: dict[str, Any] | None = None) -> OperatorAction:
    """Append one audited action (the caller commits with the action's own writes); ValueError for a reason over
    MAX_REASON_LENGTH characters (the web asks for a shorter one before any work is done)."""
    if len(reason.strip()) > MAX_REASON_LENGTH:
        raise ValueError(f"the reason has {len(reason.strip())} characters; at most {MAX_REASON_LENGTH}")
    entry = OperatorAction(operator_id=operator_id, action=action, target_tenant_id=tenant_id, reason=reason.strip(),
                           parameters=parameters or {}, result=result)
    session.add(entry)
    session.flush()
    return entry

"""What every audited operator action takes from its request: a reason for the audit log, and who acts."""
from __future__ import annotations

from flask import flash, request
from flask_login import current_user


def reason_or_flash(message: str) -> str | None:
    """The form's non-blank reason; else flash `message` (saying why one is needed) and return None."""
    reason = request.form.get("reason", "")
    if reason.strip():
        return reason
    flash(message, "error")
    return None


def acting_operator() -> str:
    """The signed-in operator's id, as the domain's operations take the actor."""
    return current_user.identity.principal_id

"""What every audited operator action asks of its form: a reason for the audit log."""
from __future__ import annotations

from flask import flash, request


def reason_or_flash(message: str) -> str | None:
    """The form's non-blank reason; else flash `message` (saying why one is needed) and return None."""
    reason = request.form.get("reason", "")
    if reason.strip():
        return reason
    flash(message, "error")
    return None

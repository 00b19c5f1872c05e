"""What every audited operator action takes from its request: a reason for the audit log, and who acts."""
from __future__ import annotations

from flask import flash, request
from flask_babel import gettext as _
from flask_login import current_user

from backoffice.operators.models import MAX_REASON_LENGTH


def reason_or_flash(message: str) -> str | None:
    """The form's non-blank reason; else flash `message` (saying why one is needed) and return None. A reason
    longer than the audit log keeps is flashed back too, with the limit."""
    reason = request.form.get("reason", "")
    if not reason.strip():
        flash(message, "error")
        return None
    if len(reason.strip()) > MAX_REASON_LENGTH:
        flash(_("The reason has %(length)d characters; the audit log keeps at most %(max)d. Shorten it and try "
                "again.", length=len(reason.strip()), max=MAX_REASON_LENGTH), "error")
        return None
    return reason


def acting_operator() -> str:
    """The signed-in operator's id, as the domain's operations take the actor."""
    return current_user.identity.principal_id

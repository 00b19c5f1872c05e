"""Who may read a job's status by its id: the operator who started it, or an admin."""
from __future__ import annotations

import re

from flask_login import current_user

from backoffice.jobs import JobStatus, job_status

# What RQ accepts as an id (letters, digits, _ and -), and no longer than anything we make (uuid4 hex: 32).
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def visible_job(job_id: str) -> JobStatus | None:
    """Return the job's status for the signed-in operator, or None when there is no such job or it is not theirs.

    Someone else's job looks exactly like a missing one (a 404, not a 403), so a guessed id confirms nothing; an id
    of the wrong shape never reaches Redis, which would refuse it with a ValueError.
    """
    if not JOB_ID.fullmatch(job_id):
        return None
    status = job_status(job_id)
    if status is None or not current_user.is_authenticated:
        return None
    if current_user.is_admin or (status.owner is not None and status.owner == current_user.get_id()):
        return status
    return None

"""A Sync's outcome in the operator's words: a failure as one sentence, its discrepancies grouped per ledger row."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _

from backoffice.jobs import JobStatus

# Each kind of discrepancy and the action that settles it; every other kind is acknowledged once understood.
RESTATE_KINDS = frozenset({"BillingEventDenormalizationStale"})
RECOVERY_KINDS = frozenset({"MissingHistoricalEventUnrecoverable"})


def sync_failure(job: JobStatus | None) -> str | None:
    """What failed, what was kept and what to do, for a Sync job that failed; None for any other job."""
    if job is None or job.status != "failed":
        return None
    meta = job.meta or {}
    failed = {
        "stripe_unreachable": _("Stripe could not be reached, so the sync stopped."),
        "stripe_refused": _("Stripe refused a request, so the sync stopped."),
    }.get(meta.get("failed"), _("The sync stopped on an unexpected error."))
    kept = {
        "pulled": _("The missed events already pulled stay in the archive; the ledger is unchanged."),
        "replayed": _("The missed events and the replayed ledger are kept, but drift was not checked."),
    }.get(meta.get("kept"), _("Nothing was changed."))
    todo = {
        "stripe_unreachable": _("Retry in a few minutes; if it keeps failing, check that the worker can reach "
                                "Stripe."),
        "stripe_refused": _("Retrying will not help until the cause in the technical detail is fixed."),
    }.get(meta.get("failed"), _("Retry once; if it fails again, report the technical detail."))
    return f"{failed} {kept} {todo}"


@dataclass
class RowDiscrepancies:
    """The discrepancies of one ledger row (or of no row: the account as a whole), grouped under their kind."""

    kind: str
    action: str  # "restate", "recovery" or "acknowledge"
    event_id: str | None
    severity: str
    items: list[dict[str, Any]] = field(default_factory=list)


def action_of(kind: str) -> str:
    if kind in RESTATE_KINDS:
        return "restate"
    if kind in RECOVERY_KINDS:
        return "recovery"
    return "acknowledge"


def grouped(discrepancies: Iterable[dict[str, Any]]) -> list[RowDiscrepancies]:
    """One group per (kind, ledger row): a stale row's fields side by side, not one line each; first seen first."""
    groups: dict[tuple[str, str | None], RowDiscrepancies] = {}
    for item in discrepancies:
        kind = item.get("kind") or ""
        key = (kind, item.get("event_id"))
        if key not in groups:
            groups[key] = RowDiscrepancies(kind, action_of(kind), item.get("event_id"), item.get("severity") or "")
        groups[key].items.append(item)
    return list(groups.values())


def stale_field(item: dict[str, Any]) -> str:
    """The field a stale row differs in: the discrepancy's own `field`, or the message's first word."""
    return item.get("field") or (item.get("message") or "").split(" ", 1)[0]

"""Refunds of card charges, full or partial.

There are no PaymentIntents in the sandbox: a refund names its charge (`charge=ch_…`), as Stripe still allows.
"""
from __future__ import annotations

import copy
from typing import Any

from backoffice.stripe_sandbox.api import Router, paginate
from backoffice.stripe_sandbox.errors import InvalidRequest, parameter_invalid, parameter_missing
from backoffice.stripe_sandbox.params import Params
from backoffice.stripe_sandbox.resources.common import apply_metadata
from backoffice.stripe_sandbox.sandbox import Sandbox

router = Router()

Obj = dict[str, Any]
REASONS = {"duplicate", "fraudulent", "requested_by_customer"}


def refundable(charge: Obj) -> int:
    """Return how much of a charge can still be refunded."""
    return charge["amount_captured"] - charge["amount_refunded"]


def refund_charge(sb: Sandbox, charge: Obj, amount: int | None = None, reason: str | None = None,
                  metadata: dict[str, str] | None = None) -> Obj:
    """Refund `amount` (all that is left by default) of a succeeded charge.

    Events: refund.created, then charge.refunded (previous_attributes: amount_refunded, refunds and, once
    the charge is refunded in full, refunded).
    """
    if charge["status"] != "succeeded":
        raise InvalidRequest(f"Charge {charge['id']} has not succeeded and cannot be refunded.",
                             code="charge_not_refundable", param="charge")
    left = refundable(charge)
    if left == 0:
        raise InvalidRequest(f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded",
                             param="charge")
    amount = left if amount is None else amount
    if amount > left:
        raise InvalidRequest(f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                             code="amount_too_large", param="amount")
    refund = _new_refund(sb, charge, amount, reason, metadata or {})
    sb.store.add(refund)
    sb.emit("refund.created", refund)
    before = sb.snapshot(charge)
    charge["amount_refunded"] += amount
    charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
    charge["refunds"]["data"].insert(0, copy.deepcopy(refund))  # newest first, like every Stripe list
    sb.emit("charge.refunded", charge, before)
    return refund


def _new_refund(sb: Sandbox, charge: Obj, amount: int, reason: str | None, metadata: dict[str, str]) -> Obj:
    return {
        "id": sb.new_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": None,
        "charge": charge["id"],
        "created": sb.now(),
        "currency": charge["currency"],
        "customer": charge["customer"],
        "customer_account": None,
        "destination_details": {"card": {"reference": None, "reference_status": "pending",
                                         "reference_type": "acquirer_reference_number", "type": "refund"},
                                "type": "card"},
        "metadata": metadata,
        "payment_intent": None,
        "payment_method": charge["payment_method"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": "succeeded",
        "transfer_reversal": None,
    }


@router.add("POST", "/v1/refunds", {"charge", "payment_intent", "amount", "reason", "metadata"})
def create_refund(sb: Sandbox, params: Params) -> Obj:
    if "payment_intent" in params:
        raise parameter_invalid("payment_intent", "The sandbox has no PaymentIntents: refund the charge (`charge`).")
    charge_id = params.text("charge")
    if not charge_id:
        raise parameter_missing("charge")
    charge = sb.store.get("charge", charge_id, param="charge")
    reason = params.text("reason")
    if reason is not None and reason not in REASONS:
        raise parameter_invalid("reason", f"Invalid reason: must be one of {', '.join(sorted(REASONS))}")
    holder: Obj = {}
    apply_metadata(holder, params)
    return refund_charge(sb, charge, params.integer("amount", minimum=1), reason, holder.get("metadata"))


@router.add("GET", "/v1/refunds/{refund_id}")
def retrieve_refund(sb: Sandbox, params: Params, refund_id: str) -> Obj:
    return sb.store.get("refund", refund_id)


@router.add("GET", "/v1/refunds", {"limit", "starting_after", "ending_before", "charge"})
def list_refunds(sb: Sandbox, params: Params) -> Obj:
    charge = params.text("charge")
    refunds = [r for r in sb.store.all("refund") if charge is None or r["charge"] == charge]
    return paginate(refunds, params, "/v1/refunds")

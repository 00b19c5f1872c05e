"""Credit notes: lower what an open invoice asks (pre-payment), or give back part of a paid one (post-payment)
as a refund on its charge, a credit to the customer's balance, or money returned out of band.

Voiding a credit note undoes what can be undone: the invoice's amounts and a balance credit. A refund cannot
be taken back, so a credit note that refunded is not voidable here.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from backoffice.stripe_sandbox.api import Router, paginate
from backoffice.stripe_sandbox.errors import InvalidRequest, parameter_invalid, parameter_missing
from backoffice.stripe_sandbox.params import Params, to_int
from backoffice.stripe_sandbox.resources.common import apply_metadata
from backoffice.stripe_sandbox.resources.invoices import (
    DOCUMENTS_HOST,
    adjust_balance,
    mark_paid,
    payment_id_for,
    round_minor,
    totals_of,
)
from backoffice.stripe_sandbox.resources.refunds import refund_charge, refundable
from backoffice.stripe_sandbox.resources.subscriptions import follow_invoice
from backoffice.stripe_sandbox.sandbox import Sandbox

router = Router()

Obj = dict[str, Any]
REASONS = {"duplicate", "fraudulent", "order_change", "product_unsatisfactory"}
LINE_FIELDS = {"type", "invoice_line_item", "amount", "quantity", "description", "unit_amount", "metadata"}
CREATE_PARAMS = {"invoice", "lines", "amount", "refund_amount", "credit_amount", "out_of_band_amount", "reason",
                 "memo", "metadata"}


# --- lines -----------------------------------------------------------------------------------------------------
def _read_lines(sb: Sandbox, params: Params, invoice: Obj) -> list[Obj]:
    lines = []
    for index, entry in enumerate(params.array("lines")):
        param = f"lines[{index}]"
        if not isinstance(entry, dict):
            raise parameter_invalid(param, f"Invalid object: {param} must be a hash")
        unknown = sorted(set(entry) - LINE_FIELDS)
        if unknown:
            raise parameter_invalid(f"{param}[{unknown[0]}]", f"Received unknown parameter: {param}[{unknown[0]}]",
                                    code="parameter_unknown")
        if entry.get("type") == "invoice_line_item":
            lines.append(_invoice_line_credit(sb, entry, param, invoice))
        elif entry.get("type") == "custom_line_item":
            lines.append(_custom_line_credit(sb, entry, param))
        else:
            raise parameter_invalid(f"{param}[type]", "Invalid type: must be invoice_line_item or custom_line_item")
    return lines


def _invoice_line_credit(sb: Sandbox, entry: Obj, param: str, invoice: Obj) -> Obj:
    """Credit all of an invoice line, or part of it (`amount`, or `quantity` of its units).

    The line's discounts and taxes are credited in the same proportion.
    """
    line_id = entry.get("invoice_line_item")
    line = next((line for line in invoice["lines"]["data"] if line["id"] == line_id), None)
    if line is None:
        raise parameter_invalid(f"{param}[invoice_line_item]", f"No such invoice line item: '{line_id}' on invoice "
                                                                f"{invoice['id']}")
    quantity = to_int(entry.get("quantity", line["quantity"]), f"{param}[quantity]", minimum=0)
    default = round_minor(Decimal(line["amount"]) * quantity / line["quantity"]) if line["quantity"] else 0
    amount = to_int(entry.get("amount", default), f"{param}[amount]", minimum=0)
    if amount > line["amount"]:
        raise parameter_invalid(f"{param}[amount]", f"The amount to credit ({amount}) exceeds the line's "
                                                    f"({line['amount']}).")
    share = Decimal(amount) / line["amount"] if line["amount"] else Decimal(0)
    discounts = [{**d, "amount": round_minor(d["amount"] * share)} for d in line["discount_amounts"]]
    taxes = [{**t, "amount": round_minor(t["amount"] * share), "taxable_amount": round_minor(t["taxable_amount"] * share)}
             for t in line["taxes"]]
    return _credit_line(sb, "invoice_line_item", amount, quantity, line["description"], discounts, taxes,
                        invoice_line_item=line["id"])


def _custom_line_credit(sb: Sandbox, entry: Obj, param: str) -> Obj:
    unit_amount = to_int(entry.get("unit_amount"), f"{param}[unit_amount]", minimum=0)
    quantity = to_int(entry.get("quantity", "1"), f"{param}[quantity]", minimum=1)
    if not entry.get("description"):
        raise parameter_missing(f"{param}[description]")
    return _credit_line(sb, "custom_line_item", unit_amount * quantity, quantity, entry["description"], [], [],
                        unit_amount=unit_amount)


def _credit_line(sb: Sandbox, kind: str, amount: int, quantity: int, description: str, discounts: list[Obj],
                 taxes: list[Obj], *, invoice_line_item: str | None = None, unit_amount: int | None = None) -> Obj:
    return {
        "id": sb.new_id("cnli"), "object": "credit_note_line_item", "amount": amount, "description": description,
        "discount_amount": sum(d["amount"] for d in discounts), "discount_amounts": discounts,
        "invoice_line_item": invoice_line_item, "livemode": False, "metadata": None, "pretax_credit_amounts": [],
        "quantity": quantity, "tax_rates": [], "taxes": taxes, "type": kind, "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount) if unit_amount is not None else None,
    }


# --- amounts ---------------------------------------------------------------------------------------------------
def _split(params: Params, total: int, post_payment: bool) -> tuple[int, int, int]:
    """Return (refund, credit, out of band): on a paid invoice they add up to the total, the rest as credit."""
    refund, credit, out_of_band = (params.integer(name, minimum=0)
                                   for name in ("refund_amount", "credit_amount", "out_of_band_amount"))
    if not post_payment:
        if refund or credit or out_of_band:
            raise InvalidRequest("A credit note on an unpaid invoice lowers what it asks: refund_amount, "
                                 "credit_amount and out_of_band_amount are for paid invoices.", param="refund_amount")
        return 0, 0, 0
    given = (refund or 0) + (credit or 0) + (out_of_band or 0)
    if given > total:
        raise InvalidRequest(f"The sum of refund_amount, credit_amount and out_of_band_amount ({given}) exceeds the "
                             f"credit note's total ({total}).", param="refund_amount")
    return refund or 0, (credit or 0) + total - given, out_of_band or 0


def _creditable(invoice: Obj) -> int:
    if invoice["status"] == "open":
        return invoice["amount_remaining"]
    return invoice["amount_paid"] - invoice["post_payment_credit_notes_amount"]


def _paid_charge(sb: Sandbox, invoice: Obj) -> Obj:
    payment = sb.store.find(payment_id_for(invoice["id"]))
    if payment is None or payment["status"] != "paid":
        raise InvalidRequest("This invoice was not paid by card: there is no charge to refund.",
                             param="refund_amount")
    return sb.store.get("charge", payment["payment"]["charge"])


# --- routes ----------------------------------------------------------------------------------------------------
@router.add("POST", "/v1/credit_notes", CREATE_PARAMS)
def create_credit_note(sb: Sandbox, params: Params) -> Obj:
    """Issue a credit note on an open or paid invoice, by `lines` or a plain `amount`.

    Events, pre-payment: credit_note.created, invoice.updated (amount_due, amount_remaining,
    pre_payment_credit_notes_amount) and invoice.paid when nothing is left to pay. Post-payment: refund.created
    and charge.refunded for a refund, customer.updated for a balance credit, then credit_note.created and
    invoice.updated (post_payment_credit_notes_amount).
    """
    invoice = sb.store.get("invoice", params.text("invoice", required=True) or "", param="invoice")
    if invoice["status"] not in {"open", "paid"}:
        raise InvalidRequest(f"You can only create a credit note on an open or paid invoice; this invoice is "
                             f"{invoice['status']}.", param="invoice")
    reason = params.text("reason")
    if reason is not None and reason not in REASONS:
        raise parameter_invalid("reason", f"Invalid reason: must be one of {', '.join(sorted(REASONS))}")
    lines = _read_lines(sb, params, invoice)
    totals = totals_of(lines)
    total = totals.total if lines else (params.integer("amount", minimum=1) or 0)
    if not lines and not total:
        raise parameter_missing("lines")
    if lines and "amount" in params and params.integer("amount") != total:
        raise parameter_invalid("amount", f"The amount ({params.integer('amount')}) must equal the total of the "
                                          f"lines ({total}).")
    if total > _creditable(invoice):
        raise InvalidRequest(f"The credit note's total ({total}) exceeds what the invoice leaves to credit "
                             f"({_creditable(invoice)}).", param="amount")
    post_payment = invoice["status"] == "paid"
    refund_amount, credit_amount, out_of_band = _split(params, total, post_payment)
    note_id = sb.new_id("cn")
    refunds = _refund(sb, invoice, refund_amount, note_id)
    balance = (adjust_balance(sb, sb.store.get("customer", invoice["customer"]), -credit_amount, "credit_note",
                              credit_note=note_id, invoice=invoice["id"]) if credit_amount else None)
    note = sb.store.add({
        "id": note_id, "object": "credit_note", "amount": total, "amount_shipping": 0, "created": sb.now(),
        "currency": invoice["currency"], "customer": invoice["customer"], "customer_account": None,
        "customer_balance_transaction": balance["id"] if balance else None,
        "discount_amount": totals.discount, "discount_amounts": totals.discount_amounts,
        "effective_at": sb.now(), "invoice": invoice["id"],
        "lines": {"object": "list", "data": lines, "has_more": False, "url": f"/v1/credit_notes/{note_id}/lines"},
        "livemode": False, "memo": params.text("memo"), "metadata": {}, "number": _number(sb, invoice),
        "out_of_band_amount": out_of_band or None, "pdf": f"{DOCUMENTS_HOST}/credit_notes/{note_id}/pdf",
        "post_payment_amount": total if post_payment else 0, "pre_payment_amount": 0 if post_payment else total,
        "pretax_credit_amounts": [], "reason": reason, "refunds": refunds, "shipping_cost": None, "status": "issued",
        "subtotal": totals.subtotal if lines else total,
        "subtotal_excluding_tax": totals.subtotal_excluding_tax if lines else total,
        "total": total, "total_excluding_tax": totals.total_excluding_tax if lines else total,
        "total_taxes": totals.taxes, "type": "post_payment" if post_payment else "pre_payment", "voided_at": None,
    })
    apply_metadata(note, params)
    sb.emit("credit_note.created", note)
    _apply_to_invoice(sb, invoice, note, sign=1)
    return note


def _refund(sb: Sandbox, invoice: Obj, amount: int, note_id: str) -> list[Obj]:
    if not amount:
        return []
    charge = _paid_charge(sb, invoice)
    if amount > refundable(charge):
        raise InvalidRequest(f"refund_amount ({amount}) is greater than what the charge has left to refund "
                             f"({refundable(charge)}).", param="refund_amount")
    refund = refund_charge(sb, charge, amount, metadata={"credit_note": note_id})
    return [{"amount_refunded": amount, "payment_record_refund": None, "refund": refund["id"], "type": "refund"}]


def _number(sb: Sandbox, invoice: Obj) -> str:
    count = sum(1 for note in sb.store.all("credit_note") if note["invoice"] == invoice["id"])
    return f"{invoice['number']}-CN-{count + 1:02d}"


def _apply_to_invoice(sb: Sandbox, invoice: Obj, note: Obj, sign: int) -> None:
    """Add (sign 1) or take back (sign -1) a credit note's effect on its invoice. Event: invoice.updated."""
    before = sb.snapshot(invoice)
    amount = sign * note["total"]
    if note["type"] == "pre_payment":
        invoice["pre_payment_credit_notes_amount"] += amount
        invoice["amount_due"] -= amount
        invoice["amount_remaining"] -= amount
    else:
        invoice["post_payment_credit_notes_amount"] += amount
    sb.emit("invoice.updated", invoice, before)
    if invoice["status"] == "open" and invoice["amount_remaining"] == 0:
        mark_paid(sb, invoice, 0, by_payment=False)
        follow_invoice(sb, invoice)


@router.add("POST", "/v1/credit_notes/{credit_note_id}/void")
def void_credit_note(sb: Sandbox, params: Params, credit_note_id: str) -> Obj:
    """Void a credit note. Events: credit_note.voided (previous_attributes: status, voided_at), customer.updated
    when it had credited the balance (the credit is taken back), invoice.updated."""
    note = sb.store.get("credit_note", credit_note_id)
    if note["status"] != "issued":
        raise InvalidRequest(f"The credit note {credit_note_id} is already void.")
    if note["refunds"]:
        raise InvalidRequest("A credit note that refunded a charge cannot be voided: the refund cannot be undone.")
    invoice = sb.store.get("invoice", note["invoice"])
    if note["type"] == "pre_payment" and invoice["status"] != "open":
        raise InvalidRequest(f"The invoice {invoice['id']} is {invoice['status']}: a pre-payment credit note on it "
                             "can no longer be voided.")
    before = sb.snapshot(note)
    note["status"], note["voided_at"] = "void", sb.now()
    sb.emit("credit_note.voided", note, before)
    if note["customer_balance_transaction"]:
        credited = sb.store.get("customer_balance_transaction", note["customer_balance_transaction"])
        adjust_balance(sb, sb.store.get("customer", note["customer"]), -credited["amount"], "credit_note",
                       credit_note=note["id"], invoice=invoice["id"])
    _apply_to_invoice(sb, invoice, note, sign=-1)
    return note


@router.add("GET", "/v1/credit_notes/{credit_note_id}")
def retrieve_credit_note(sb: Sandbox, params: Params, credit_note_id: str) -> Obj:
    return sb.store.get("credit_note", credit_note_id)


@router.add("GET", "/v1/credit_notes/{credit_note_id}/lines", {"limit", "starting_after", "ending_before"})
def list_credit_note_lines(sb: Sandbox, params: Params, credit_note_id: str) -> Obj:
    note = sb.store.get("credit_note", credit_note_id)
    return paginate(note["lines"]["data"][::-1], params, note["lines"]["url"])


@router.add("GET", "/v1/credit_notes", {"limit", "starting_after", "ending_before", "invoice", "customer"})
def list_credit_notes(sb: Sandbox, params: Params) -> Obj:
    invoice, customer = params.text("invoice"), params.text("customer")
    notes = [note for note in sb.store.all("credit_note")
             if (invoice is None or note["invoice"] == invoice) and (customer is None or note["customer"] == customer)]
    return paginate(notes, params, "/v1/credit_notes")

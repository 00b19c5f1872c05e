"""Payment transactions from a customer's archived events (DESIGN §4.10, reference §5): one per invoice.

A pure fold over the events in ledger order, keeping each invoice, charge, refund and credit note as last
seen. Net revenue of a transaction = amount_excluding_tax − refunded_amount − credited_amount (all ex-VAT);
partial refunds and credit notes are netted, a voided credit note counts no more.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from backoffice.billing.ledger.ordering import ArchivedEvent
from backoffice.billing.ledger.pricing import Catalog
from backoffice.billing.ledger.resolvers import list_data, ref_id
from backoffice.money import cents, to_major

Obj = dict[str, Any]
ZERO = Decimal("0.00")
STATUS_BY_INVOICE = {"paid": "succeeded", "open": "pending", "uncollectible": "failed", "void": "cancelled",
                     "draft": "pending"}
AMOUNT_CLAMPED = "AmountExcludingTaxClamped"
# An invoice's status only moves forward (draft → open → paid | uncollectible | void; uncollectible → paid), and
# Stripe's invoice events of one second carry no previous_attributes to chain them by: the furthest status wins.
STATUS_RANK = {"draft": 0, "open": 1, "uncollectible": 2, "void": 3, "paid": 3}


@dataclass(frozen=True)
class Payment:
    """One row of `payment_transactions`, amounts in major units."""

    id: str
    amount: Decimal
    amount_excluding_tax: Decimal
    tax_amount: Decimal
    invoice_total: Decimal
    amount_from_credit: Decimal
    refunded_amount: Decimal
    credited_amount: Decimal
    currency: str
    status: str
    date: datetime
    plan: str | None
    invoice_url: str | None
    credit_note_url: str | None
    credit_noted_at: datetime | None
    refunded_at: datetime | None
    failure_reason: str | None
    clamped: bool = False

    def values(self) -> dict[str, Any]:
        values = dict(self.__dict__)
        values.pop("clamped")
        return values


def _at(seconds: int | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, UTC) if isinstance(seconds, int) else None


def _tax(invoice: Obj) -> int:
    """The invoice's tax in minor units, whichever shape it comes in."""
    if isinstance(invoice.get("total_taxes"), list):  # basil and later
        return sum(int(tax.get("amount") or 0) for tax in invoice["total_taxes"])
    if isinstance(invoice.get("tax"), int):
        return invoice["tax"]
    if isinstance(invoice.get("total_tax_amounts"), list):
        return sum(int(tax.get("amount") or 0) for tax in invoice["total_tax_amounts"])
    total, excluding = invoice.get("total"), invoice.get("total_excluding_tax")
    return total - excluding if isinstance(total, int) and isinstance(excluding, int) else 0


def _line_plan(line: Obj, catalog: Catalog) -> str | None:
    pricing = (line.get("pricing") or {}).get("price_details") or {}
    price = pricing.get("price") or line.get("price") or line.get("plan")
    if isinstance(price, dict) and (price.get("metadata") or {}).get("plan"):
        return price["metadata"]["plan"]
    price_id = ref_id(price)
    if price_id is None:
        return None  # a line with no price (a one-off amount) is of no plan
    entry = catalog.price(price_id)  # MissingKnowledge when it cannot be had: the replay waits
    return entry.plan if entry else None


def invoice_plan(invoice: Obj, catalog: Catalog) -> str | None:
    """The plan of the line with the largest positive amount (a proration's new plan), else of the first line."""
    lines = [line for line in list_data(invoice.get("lines")) if isinstance(line, dict)]
    if not lines:
        return None
    positive = [line for line in lines if (line.get("amount") or 0) > 0]
    chosen = max(positive, key=lambda line: line["amount"]) if positive else lines[0]
    return _line_plan(chosen, catalog)


class PaymentFold:
    """Invoices, charges, refunds and credit notes as last seen in the events, folded into payments.

    A refunded charge nets against the invoice it paid: named by the charge (before basil), by the invoice,
    or by the invoice's payment (naming the charge, or the PaymentIntent the charge belongs to). A charge the
    archive cannot tie to an invoice is asked of `link_charge` (Stripe, through the gateway), if given.
    """

    def __init__(self, catalog: Catalog, link_charge: Callable[[str], str | None] | None = None):
        self.catalog = catalog
        self.link_charge = link_charge
        self.invoices: dict[str, Obj] = {}
        self.charge_invoice: dict[str, str] = {}
        self.charge_intent: dict[str, str] = {}
        self.intent_invoice: dict[str, str] = {}
        self.refunded: dict[str, tuple[int, datetime]] = {}  # charge → (amount refunded, when)
        self.credit_notes: dict[str, Obj] = {}
        self.refunds: dict[str, Obj] = {}

    def add(self, event: ArchivedEvent) -> None:
        obj = event.object
        kind = obj.get("object")
        if kind == "invoice" and obj.get("id"):
            known = self.invoices.get(obj["id"])
            if known is None or STATUS_RANK.get(obj.get("status"), 0) >= STATUS_RANK.get(known.get("status"), 0):
                self.invoices[obj["id"]] = obj
            charge = ref_id(obj.get("charge"))
            if charge:
                self.charge_invoice[charge] = obj["id"]
        elif kind == "invoice_payment":
            invoice = ref_id(obj.get("invoice"))
            if invoice:
                payment = obj.get("payment") or {}
                charge, intent = ref_id(payment.get("charge")), ref_id(payment.get("payment_intent"))
                if charge:
                    self.charge_invoice[charge] = invoice
                if intent:
                    self.intent_invoice[intent] = invoice
        elif kind == "charge" and obj.get("id"):
            invoice, intent = ref_id(obj.get("invoice")), ref_id(obj.get("payment_intent"))
            if invoice:
                self.charge_invoice[obj["id"]] = invoice
            if intent:
                self.charge_intent[obj["id"]] = intent
            refunded = int(obj.get("amount_refunded") or 0)
            if refunded > self.refunded.get(obj["id"], (0, None))[0]:  # only grows; the latest refund dates it
                self.refunded[obj["id"]] = (refunded, datetime.fromtimestamp(event.created, UTC))
        elif kind == "credit_note" and obj.get("id"):
            self.credit_notes[obj["id"]] = obj
        elif kind == "refund" and obj.get("id"):
            self.refunds[obj["id"]] = obj

    def payments(self) -> list[Payment]:
        self._link_refunded_charges()
        # Each invoice's credit notes and charge refunds, gathered in one pass rather than searched for per invoice.
        notes: dict[str | None, list[Obj]] = {}
        for note in self.credit_notes.values():
            notes.setdefault(ref_id(note.get("invoice")), []).append(note)
        refunds: dict[str, list[tuple[int, datetime]]] = {}
        for charge, invoice_id in self.charge_invoice.items():
            if charge in self.refunded:
                refunds.setdefault(invoice_id, []).append(self.refunded[charge])
        return [self._payment(invoice, notes.get(invoice["id"], []), refunds.get(invoice["id"], []))
                for invoice in self.invoices.values() if invoice.get("status") != "draft"]

    def _link_refunded_charges(self) -> None:
        """Tie each refunded charge to its invoice: from the archive when it can, else through `link_charge`."""
        for charge in self.refunded:
            if charge in self.charge_invoice:
                continue
            invoice = self.intent_invoice.get(self.charge_intent.get(charge, ""))
            if invoice is None and self.link_charge is not None:
                invoice = self.link_charge(charge)
            if invoice is not None:
                self.charge_invoice[charge] = invoice

    def _payment(self, invoice: Obj, notes: list[Obj], refunds: list[tuple[int, datetime]]) -> Payment:
        """The invoice's payment, with its credit notes and the refunds of the charges that paid it."""
        currency = str(invoice.get("currency") or "").upper()

        def major(minor: int | None) -> Decimal:
            return to_major(minor or 0, currency) or ZERO

        total = int(invoice.get("total") or 0)
        tax = _tax(invoice)
        paid = invoice.get("status") == "paid"
        amount_paid = int(invoice.get("amount_paid") or 0)
        if total < 0:
            # A credit invoice (a downgrade's unused time): it adds to the customer's balance; no money moves
            # and it is no revenue. What the balance pays later is not new revenue either (below).
            total = tax = amount_paid = 0
        amount = amount_paid if paid else total
        excluding = total - tax
        clamped = excluding < 0
        excluding = max(excluding, 0)
        if paid and 0 <= amount_paid < total:
            # Paid in part from the customer's credit balance: only the money paid is revenue, at the invoice's
            # VAT ratio (cash basis, so a balance from a credit invoice is never counted twice).
            excluding = int((Decimal(excluding) * amount_paid / total).quantize(Decimal(1), ROUND_HALF_EVEN))
            tax = amount_paid - excluding
        live_notes = [note for note in notes if note.get("status") != "void"]
        refunded_minor = sum(amount for amount, _ in refunds)
        refunded_at = max((at for _, at in refunds), default=None)
        # A credit note that refunds carries its refund: count the money once, as credit.
        covered = sum(_note_refund(note, self.refunds) for note in live_notes)
        ratio = Decimal(excluding) / Decimal(total) if total > 0 else Decimal(1)
        refunded = cents(major(max(refunded_minor - covered, 0)) * ratio)
        # A credit note carries the invoice's VAT rate: its ex-VAT part is its total at the invoice's ratio.
        credited = cents(sum((major(_note_total(note)) for note in live_notes), ZERO) * ratio)
        status = STATUS_BY_INVOICE.get(str(invoice.get("status")), "pending")
        if status == "succeeded" and amount_paid > 0 and refunded_minor >= amount_paid:
            status = "refunded"
        latest_note = max(notes, key=lambda note: note.get("created") or 0) if notes else None
        latest_live = max(live_notes, key=lambda note: note.get("created") or 0) if live_notes else None
        return Payment(
            id=invoice["id"], amount=major(amount), amount_excluding_tax=major(excluding), tax_amount=major(tax),
            invoice_total=major(total), amount_from_credit=major(max(total - amount, 0)),
            refunded_amount=min(refunded, major(excluding)), credited_amount=min(credited, major(excluding)),
            currency=currency, status=status, date=_at(invoice.get("created")) or datetime.now(UTC),
            plan=invoice_plan(invoice, self.catalog),
            invoice_url=invoice.get("invoice_pdf") or invoice.get("hosted_invoice_url"),
            credit_note_url=(latest_note or {}).get("pdf"), credit_noted_at=_at((latest_live or {}).get("created")),
            refunded_at=refunded_at,
            failure_reason="Payment failed." if invoice.get("status") == "uncollectible" else None,
            clamped=clamped,
        )


def _note_refund(note: Obj, refunds: dict[str, Obj]) -> int:
    """How much of a credit note went back as a refund (basil lists them; older shapes name one refund)."""
    listed = note.get("refunds")
    if isinstance(listed, list):
        return sum(int(entry.get("amount_refunded") or 0) for entry in listed if isinstance(entry, dict))
    refund = note.get("refund")
    refund = refund if isinstance(refund, dict) else refunds.get(refund) if isinstance(refund, str) else None
    return int((refund or {}).get("amount") or 0)


def _note_total(note: Obj) -> int:
    for name in ("total", "amount"):
        if isinstance(note.get(name), int):
            return note[name]
    return 0


def fold_payments(events: Iterable[ArchivedEvent], catalog: Catalog,
                  link_charge: Callable[[str], str | None] | None = None) -> list[Payment]:
    fold = PaymentFold(catalog, link_charge)
    for event in events:
        fold.add(event)
    return fold.payments()

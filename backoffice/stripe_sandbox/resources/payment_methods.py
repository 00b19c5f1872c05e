"""Payment methods (cards), Stripe's test tokens, attach, detach and update."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from backoffice.stripe_sandbox.api import Router, paginate
from backoffice.stripe_sandbox.errors import (
    CardDeclined,
    InvalidRequest,
    parameter_invalid,
    parameter_missing,
)
from backoffice.stripe_sandbox.params import Params, to_int
from backoffice.stripe_sandbox.resources.common import apply_metadata
from backoffice.stripe_sandbox.sandbox import Sandbox

router = Router()


@dataclass(frozen=True)
class TestCard:
    """One of Stripe's documented test cards, and how charges to it end."""

    brand: str
    last4: str
    fingerprint: str
    country: str = "US"
    funding: str = "credit"
    declines_on_attach: bool = False
    declines_charges: bool = False


TEST_CARDS = {
    "visa": TestCard("visa", "4242", "sbxVisa4242"),
    "visa_debit": TestCard("visa", "5556", "sbxVisaDebit5556", funding="debit"),
    "mastercard": TestCard("mastercard", "4444", "sbxMc4444"),
    "amex": TestCard("amex", "8431", "sbxAmex8431"),
    "dk_visa": TestCard("visa", "0000", "sbxDkVisa0000", country="DK"),
    # Attaches fine, but every charge is declined: the card that fails renewals.
    "chargeCustomerFail": TestCard("visa", "0341", "sbxFail0341", declines_charges=True),
    "chargeDeclined": TestCard("visa", "0002", "sbxDeclined0002", declines_on_attach=True, declines_charges=True),
}
CARD_NUMBERS = {"4242424242424242": "visa", "4000056655665556": "visa_debit", "5555555555554444": "mastercard",
                "378282246310005": "amex", "4000002080000001": "dk_visa", "4000000000000341": "chargeCustomerFail",
                "4000000000000002": "chargeDeclined"}
DECLINING_FINGERPRINTS = {card.fingerprint for card in TEST_CARDS.values() if card.declines_charges}


def card_for(token: str) -> TestCard:
    """Return the test card a `tok_…` or `pm_card_…` name stands for."""
    name = token.removeprefix("tok_").removeprefix("pm_card_")
    card = TEST_CARDS.get(name)
    if card is None:
        raise InvalidRequest(f"No such token: '{token}'", code="resource_missing", param="card[token]")
    return card


def declines(method: dict[str, Any]) -> bool:
    """Tell whether charges to this payment method are declined."""
    return (method.get("card") or {}).get("fingerprint") in DECLINING_FINGERPRINTS


def build(sb: Sandbox, card: TestCard, exp_month: int = 12, exp_year: int | None = None) -> dict[str, Any]:
    year = exp_year or 2034
    return {
        "id": sb.new_id("pm"),
        "object": "payment_method",
        "allow_redisplay": "unspecified",
        "billing_details": {"address": {"city": None, "country": None, "line1": None, "line2": None,
                                        "postal_code": None, "state": None},
                            "email": None, "name": None, "phone": None, "tax_id": None},
        "card": {
            "brand": card.brand,
            "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
            "country": card.country,
            "display_brand": card.brand,
            "exp_month": exp_month,
            "exp_year": year,
            "fingerprint": card.fingerprint,
            "funding": card.funding,
            "generated_from": None,
            "last4": card.last4,
            "networks": {"available": [card.brand], "preferred": None},
            "regulated_status": "unregulated",
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": sb.now(),
        "customer": None,
        "livemode": False,
        "metadata": {},
        "type": "card",
    }


@router.add("POST", "/v1/payment_methods", {"type", "card", "billing_details", "metadata"})
def create_payment_method(sb: Sandbox, params: Params) -> dict[str, Any]:
    if params.text("type", required=True) != "card":
        raise parameter_invalid("type", "The sandbox supports payment methods of type card only.")
    card_param = params.hash("card")
    if not card_param:
        raise parameter_missing("card")
    if "token" in card_param:
        card = card_for(str(card_param["token"]))
        method = build(sb, card)
    else:
        number = str(card_param.get("number", "")).replace(" ", "")
        if number not in CARD_NUMBERS:
            raise CardDeclined("Your card number is incorrect.", decline_code="incorrect_number")
        method = build(sb, TEST_CARDS[CARD_NUMBERS[number]],
                       to_int(card_param.get("exp_month", "12"), "card[exp_month]", minimum=1, maximum=12),
                       to_int(card_param.get("exp_year", "2034"), "card[exp_year]"))
    _apply_billing_details(method, params.hash("billing_details"))
    apply_metadata(method, params)
    sb.store.add(method)
    return method


@router.add("GET", "/v1/payment_methods/{method_id}")
def retrieve_payment_method(sb: Sandbox, params: Params, method_id: str) -> dict[str, Any]:
    return sb.store.get("payment_method", method_id)


@router.add("POST", "/v1/payment_methods/{method_id}", {"billing_details", "card", "metadata"})
def update_payment_method(sb: Sandbox, params: Params, method_id: str) -> dict[str, Any]:
    method = sb.store.get("payment_method", method_id)
    if method["customer"] is None:
        raise InvalidRequest("You must save this PaymentMethod to a customer before you can update it.")
    before = sb.snapshot(method)
    card = params.hash("card") or {}
    unknown = set(card) - {"exp_month", "exp_year"}
    if unknown:
        raise parameter_invalid(f"card[{sorted(unknown)[0]}]", f"Received unknown parameter: card[{sorted(unknown)[0]}]",
                                code="parameter_unknown")
    if "exp_month" in card:
        method["card"]["exp_month"] = to_int(card["exp_month"], "card[exp_month]", minimum=1, maximum=12)
    if "exp_year" in card:
        method["card"]["exp_year"] = to_int(card["exp_year"], "card[exp_year]")
    _apply_billing_details(method, params.hash("billing_details"))
    apply_metadata(method, params)
    if method != before:
        sb.emit("payment_method.updated", method, before)
    return method


@router.add("POST", "/v1/payment_methods/{method_id}/attach", {"customer"})
def attach_payment_method(sb: Sandbox, params: Params, method_id: str) -> dict[str, Any]:
    return attach(sb, method_id, params.text("customer", required=True) or "")


def attach(sb: Sandbox, method_id: str, customer_id: str) -> dict[str, Any]:
    """Attach a payment method (or a `pm_card_…` test name, made on the fly) to a customer."""
    customer = sb.store.get("customer", customer_id, param="customer")
    if method_id.startswith("pm_card_"):
        method = sb.store.add(build(sb, card_for(method_id)))
    else:
        method = sb.store.get("payment_method", method_id, param="payment_method")
    if method["customer"] == customer["id"]:
        return method
    if method["customer"] is not None:
        raise InvalidRequest("The payment method you provided has already been attached to a customer.",
                             code="payment_method_unexpected_state")
    if card_is_refused_on_attach(method):
        raise CardDeclined()
    sb.snapshot(method)
    method["customer"] = customer["id"]
    sb.emit("payment_method.attached", method)
    return method


def card_is_refused_on_attach(method: dict[str, Any]) -> bool:
    fingerprint = (method.get("card") or {}).get("fingerprint")
    return any(card.fingerprint == fingerprint and card.declines_on_attach for card in TEST_CARDS.values())


@router.add("POST", "/v1/payment_methods/{method_id}/detach")
def detach_payment_method(sb: Sandbox, params: Params, method_id: str) -> dict[str, Any]:
    method = sb.store.get("payment_method", method_id)
    if method["customer"] is None:
        raise InvalidRequest("The payment method you provided is not attached to a customer so detachment is "
                             "impossible.", code="payment_method_unexpected_state")
    customer = sb.store.find(method["customer"])
    before = sb.snapshot(method)
    if customer and customer["invoice_settings"]["default_payment_method"] == method_id:
        customer_before = sb.snapshot(customer)
        customer["invoice_settings"]["default_payment_method"] = None
        sb.emit("customer.updated", customer, customer_before)
    method["customer"] = None
    sb.emit("payment_method.detached", method, before)
    return method


@router.add("GET", "/v1/payment_methods", {"limit", "starting_after", "ending_before", "customer", "type"})
def list_payment_methods(sb: Sandbox, params: Params) -> dict[str, Any]:
    customer = params.text("customer")
    methods = [m for m in sb.store.all("payment_method") if customer is None or m["customer"] == customer]
    return paginate(methods, params, "/v1/payment_methods")


@router.add("GET", "/v1/customers/{customer_id}/payment_methods", {"limit", "starting_after", "ending_before", "type"})
def list_customer_payment_methods(sb: Sandbox, params: Params, customer_id: str) -> dict[str, Any]:
    sb.store.get("customer", customer_id)
    methods = [m for m in sb.store.all("payment_method") if m["customer"] == customer_id]
    return paginate(methods, params, f"/v1/customers/{customer_id}/payment_methods")


def _apply_billing_details(method: dict[str, Any], details: dict[str, Any] | None) -> None:
    if not details:
        return
    target = method["billing_details"]
    for key, value in details.items():
        if key == "address":
            if not isinstance(value, dict):
                raise parameter_invalid("billing_details[address]", "Invalid object")
            target["address"].update({k: (v or None) for k, v in value.items()})
        elif key in {"email", "name", "phone"}:
            target[key] = value or None
        else:
            raise parameter_invalid(f"billing_details[{key}]", f"Received unknown parameter: billing_details[{key}]",
                                    code="parameter_unknown")

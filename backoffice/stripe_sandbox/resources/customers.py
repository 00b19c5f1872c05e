"""Customers and their tax ids."""
from __future__ import annotations

from typing import Any

from backoffice.stripe_sandbox.api import Router, paginate
from backoffice.stripe_sandbox.errors import parameter_invalid
from backoffice.stripe_sandbox.params import Params
from backoffice.stripe_sandbox.resources.common import apply_metadata, deleted
from backoffice.stripe_sandbox.sandbox import Sandbox

router = Router()

CUSTOMER_PARAMS = {"name", "email", "description", "phone", "address", "metadata", "payment_method",
                   "invoice_settings", "preferred_locales", "tax_exempt", "tax_id_data", "balance"}
ADDRESS_FIELDS = ("city", "country", "line1", "line2", "postal_code", "state")
TAX_ID_TYPES = {"eu_vat", "gb_vat", "us_ein", "no_vat", "ch_vat", "au_abn", "ca_bn"}


def blank_address() -> dict[str, Any]:
    return {field: None for field in ADDRESS_FIELDS}


def read_address(value: Any, param: str) -> dict[str, Any]:
    """Return a Stripe address from a hash parameter."""
    if not isinstance(value, dict):
        raise parameter_invalid(param, f"Invalid object: {param} must be a hash")
    unknown = set(value) - set(ADDRESS_FIELDS)
    if unknown:
        name = sorted(unknown)[0]
        raise parameter_invalid(f"{param}[{name}]", f"Received unknown parameter: {param}[{name}]",
                                code="parameter_unknown")
    address = blank_address()
    address.update({key: (val or None) for key, val in value.items()})
    return address


@router.add("POST", "/v1/customers", CUSTOMER_PARAMS)
def create_customer(sb: Sandbox, params: Params) -> dict[str, Any]:
    customer = {
        "id": sb.new_id("cus", 14),
        "object": "customer",
        "address": None,
        "balance": params.integer("balance", 0),
        "created": sb.now(),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": params.text("description"),
        "discount": None,
        "email": params.text("email"),
        "invoice_prefix": sb.new_id("x", 7).split("_")[1].upper(),
        "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None,
                             "rendering_options": None},
        "livemode": False,
        "metadata": {},
        "name": params.text("name"),
        "next_invoice_sequence": 1,
        "phone": params.text("phone"),
        "preferred_locales": [str(x) for x in params.array("preferred_locales")],
        "shipping": None,
        "tax_exempt": params.text("tax_exempt", "none"),
        "test_clock": None,
    }
    if "address" in params:
        customer["address"] = read_address(params.raw("address"), "address")
    apply_metadata(customer, params)
    tax_ids = [_tax_id_values(entry, f"tax_id_data[{i}]") for i, entry in enumerate(params.array("tax_id_data"))]
    sb.store.add(customer)
    sb.emit("customer.created", customer)
    for kind, value in tax_ids:
        _add_tax_id(sb, customer, kind, value)
    method_id = params.text("payment_method")
    if method_id:
        from backoffice.stripe_sandbox.resources.payment_methods import attach

        attach(sb, method_id, customer["id"])
    default = (params.hash("invoice_settings") or {}).get("default_payment_method")
    if default:
        before = sb.snapshot(customer)
        _set_default_payment_method(sb, customer, default)
        sb.emit("customer.updated", customer, before)
    return customer


@router.add("GET", "/v1/customers/{customer_id}")
def retrieve_customer(sb: Sandbox, params: Params, customer_id: str) -> dict[str, Any]:
    customer = sb.store.find(customer_id)
    if customer is not None and customer.get("deleted"):
        return {"id": customer_id, "object": "customer", "deleted": True}
    return sb.store.get("customer", customer_id)


@router.add("POST", "/v1/customers/{customer_id}", CUSTOMER_PARAMS - {"payment_method", "tax_id_data"})
def update_customer(sb: Sandbox, params: Params, customer_id: str) -> dict[str, Any]:
    customer = sb.store.get("customer", customer_id)
    before = sb.snapshot(customer)
    for field in ("name", "email", "description", "phone", "tax_exempt"):
        if field in params:
            customer[field] = params.text(field) or None
    if "balance" in params:
        customer["balance"] = params.integer("balance")
    if "preferred_locales" in params:
        customer["preferred_locales"] = [str(x) for x in params.array("preferred_locales")]
    if "address" in params:
        customer["address"] = None if params.raw("address") == "" else read_address(params.raw("address"), "address")
    apply_metadata(customer, params)
    settings = params.hash("invoice_settings") or {}
    if "default_payment_method" in settings:
        _set_default_payment_method(sb, customer, settings["default_payment_method"] or None)
    if customer != before:
        sb.emit("customer.updated", customer, before)
    return customer


@router.add("DELETE", "/v1/customers/{customer_id}")
def delete_customer(sb: Sandbox, params: Params, customer_id: str) -> dict[str, Any]:
    customer = sb.store.get("customer", customer_id)
    from backoffice.stripe_sandbox.billing import end_subscriptions_of_deleted_customer

    end_subscriptions_of_deleted_customer(sb, customer)
    sb.snapshot(customer)
    customer["deleted"] = True
    final = {k: v for k, v in customer.items() if k != "deleted"}
    sb.emit("customer.deleted", final)
    customer["object"] = "deleted_customer"  # retrievable only as a deleted stub from now on
    return deleted({**customer, "object": "customer"})


@router.add("GET", "/v1/customers", {"limit", "starting_after", "ending_before", "email", "created"})
def list_customers(sb: Sandbox, params: Params) -> dict[str, Any]:
    email = params.text("email")
    customers = [c for c in sb.store.all("customer") if not c.get("deleted") and (email is None or c["email"] == email)]
    return paginate(customers, params, "/v1/customers")


def _set_default_payment_method(sb: Sandbox, customer: dict[str, Any], method_id: str | None) -> None:
    if method_id:
        method = sb.store.get("payment_method", method_id, param="invoice_settings[default_payment_method]")
        if method["customer"] != customer["id"]:
            raise parameter_invalid("invoice_settings[default_payment_method]",
                                    f"The payment method `{method_id}` must be attached to the customer.")
    customer["invoice_settings"]["default_payment_method"] = method_id


def _tax_id_values(entry: Any, param: str) -> tuple[str, str]:
    if not isinstance(entry, dict) or not entry.get("type") or not entry.get("value"):
        raise parameter_invalid(param, f"Invalid {param}: type and value are required")
    if entry["type"] not in TAX_ID_TYPES:
        raise parameter_invalid(f"{param}[type]", f"Invalid tax id type: {entry['type']}")
    return entry["type"], entry["value"]


def _add_tax_id(sb: Sandbox, customer: dict[str, Any], kind: str, value: str) -> dict[str, Any]:
    tax_id = {
        "id": sb.new_id("txi"),
        "object": "tax_id",
        "country": value[:2].upper() if kind.endswith("_vat") else None,
        "created": sb.now(),
        "customer": customer["id"],
        "livemode": False,
        "owner": {"customer": customer["id"], "type": "customer"},
        "type": kind,
        "value": value,
        "verification": {"status": "pending", "verified_address": None, "verified_name": None},
    }
    sb.store.add(tax_id)
    sb.emit("customer.tax_id.created", tax_id)
    return tax_id


@router.add("POST", "/v1/customers/{customer_id}/tax_ids", {"type", "value"})
def create_tax_id(sb: Sandbox, params: Params, customer_id: str) -> dict[str, Any]:
    customer = sb.store.get("customer", customer_id)
    kind = params.text("type", required=True)
    value = params.text("value", required=True)
    assert kind is not None and value is not None
    _tax_id_values({"type": kind, "value": value}, "tax_id")
    return _add_tax_id(sb, customer, kind, value)


@router.add("GET", "/v1/customers/{customer_id}/tax_ids", {"limit", "starting_after", "ending_before"})
def list_tax_ids(sb: Sandbox, params: Params, customer_id: str) -> dict[str, Any]:
    sb.store.get("customer", customer_id)
    owned = [t for t in sb.store.all("tax_id") if t["customer"] == customer_id and not t.get("deleted")]
    return paginate(owned, params, f"/v1/customers/{customer_id}/tax_ids")


@router.add("DELETE", "/v1/customers/{customer_id}/tax_ids/{tax_id}")
def delete_tax_id(sb: Sandbox, params: Params, customer_id: str, tax_id: str) -> dict[str, Any]:
    found = sb.store.get("tax_id", tax_id)
    if found["customer"] != customer_id or found.get("deleted"):
        from backoffice.stripe_sandbox.errors import ResourceMissing

        raise ResourceMissing("tax_id", tax_id)
    sb.snapshot(found)
    found["deleted"] = True
    sb.emit("customer.tax_id.deleted", {k: v for k, v in found.items() if k != "deleted"})
    return deleted(found)

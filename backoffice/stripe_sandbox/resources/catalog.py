"""Products, prices and coupons."""
from __future__ import annotations

from typing import Any

from backoffice.stripe_sandbox.api import Router, paginate
from backoffice.stripe_sandbox.errors import InvalidRequest, parameter_invalid, parameter_missing
from backoffice.stripe_sandbox.params import Params, to_int
from backoffice.stripe_sandbox.resources.common import apply_metadata, create
from backoffice.stripe_sandbox.sandbox import Sandbox

router = Router()

INTERVALS = {"day", "week", "month", "year"}
TAX_BEHAVIORS = {"inclusive", "exclusive", "unspecified"}


@router.add("POST", "/v1/products", {"id", "name", "description", "active", "metadata", "tax_code", "unit_label"})
def create_product(sb: Sandbox, params: Params) -> dict[str, Any]:
    name = params.text("name", required=True)
    product_id = params.text("id") or sb.new_id("prod", 14)
    if sb.store.find(product_id):
        raise InvalidRequest("Product already exists.", code="resource_already_exists", param="id")
    product = {
        "id": product_id,
        "object": "product",
        "active": params.boolean("active", True),
        "created": sb.now(),
        "default_price": None,
        "description": params.text("description"),
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": {},
        "name": name,
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": None,
        "tax_code": params.text("tax_code"),
        "type": "service",
        "unit_label": params.text("unit_label"),
        "updated": sb.now(),
        "url": None,
    }
    return create(sb, product, params)


@router.add("GET", "/v1/products/{product_id}")
def retrieve_product(sb: Sandbox, params: Params, product_id: str) -> dict[str, Any]:
    return sb.store.get("product", product_id)


@router.add("POST", "/v1/products/{product_id}", {"name", "description", "active", "metadata", "default_price"})
def update_product(sb: Sandbox, params: Params, product_id: str) -> dict[str, Any]:
    product = sb.store.get("product", product_id)
    before = sb.snapshot(product)
    for field in ("name", "description"):
        if field in params:
            product[field] = params.text(field)
    if "active" in params:
        product["active"] = params.boolean("active")
    if "default_price" in params:
        price = sb.store.get("price", params.text("default_price", required=True), param="default_price")
        product["default_price"] = price["id"]
    apply_metadata(product, params)
    if product != before:
        product["updated"] = sb.now()
        sb.emit("product.updated", product, before)
    return product


@router.add("GET", "/v1/products", {"limit", "starting_after", "ending_before", "active"})
def list_products(sb: Sandbox, params: Params) -> dict[str, Any]:
    active = params.boolean("active")
    products = [p for p in sb.store.all("product") if active is None or p["active"] == active]
    return paginate(products, params, "/v1/products")


PRICE_PARAMS = {"product", "product_data", "unit_amount", "currency", "recurring", "tax_behavior", "metadata",
                "nickname", "lookup_key", "active"}


@router.add("POST", "/v1/prices", PRICE_PARAMS)
def create_price(sb: Sandbox, params: Params) -> dict[str, Any]:
    currency = (params.text("currency", required=True) or "").lower()
    if len(currency) != 3 or not currency.isalpha():
        raise parameter_invalid("currency", f"Invalid currency: {currency}")
    unit_amount = params.integer("unit_amount", required=True, minimum=0)
    if "product" in params:
        product = sb.store.get("product", params.text("product", required=True) or "", param="product")
    elif "product_data" in params:
        data = params.hash("product_data") or {}
        if not data.get("name"):
            raise parameter_missing("product_data[name]")
        product = create_product(sb, Params({"name": data["name"], "metadata": data.get("metadata", {})}))
    else:
        raise parameter_missing("product")
    recurring = _recurring(params.hash("recurring"))
    tax_behavior = params.text("tax_behavior", "unspecified")
    if tax_behavior not in TAX_BEHAVIORS:
        raise parameter_invalid("tax_behavior", f"Invalid tax_behavior: {tax_behavior}")
    price = {
        "id": sb.new_id("price"),
        "object": "price",
        "active": params.boolean("active", True),
        "billing_scheme": "per_unit",
        "created": sb.now(),
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": params.text("lookup_key"),
        "metadata": {},
        "nickname": params.text("nickname"),
        "product": product["id"],
        "recurring": recurring,
        "tax_behavior": tax_behavior,
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }
    return create(sb, price, params)


def _recurring(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    interval = value.get("interval")
    if not interval:
        raise parameter_missing("recurring[interval]")
    if interval not in INTERVALS:
        raise parameter_invalid("recurring[interval]", "Invalid recurring[interval]: must be one of "
                                "day, week, month, or year")
    count = to_int(value.get("interval_count", "1"), "recurring[interval_count]", minimum=1, maximum=36)
    return {"interval": interval, "interval_count": count, "meter": None, "trial_period_days": None,
            "usage_type": "licensed"}


@router.add("GET", "/v1/prices/{price_id}")
def retrieve_price(sb: Sandbox, params: Params, price_id: str) -> dict[str, Any]:
    return sb.store.get("price", price_id)


@router.add("POST", "/v1/prices/{price_id}", {"active", "metadata", "nickname", "lookup_key", "tax_behavior"})
def update_price(sb: Sandbox, params: Params, price_id: str) -> dict[str, Any]:
    price = sb.store.get("price", price_id)
    before = sb.snapshot(price)
    if "active" in params:
        price["active"] = params.boolean("active")
    for field in ("nickname", "lookup_key"):
        if field in params:
            price[field] = params.text(field) or None
    if "tax_behavior" in params:
        behavior = params.text("tax_behavior")
        if behavior not in TAX_BEHAVIORS:
            raise parameter_invalid("tax_behavior", f"Invalid tax_behavior: {behavior}")
        price["tax_behavior"] = behavior
    apply_metadata(price, params)
    if price != before:
        sb.emit("price.updated", price, before)
    return price


@router.add("GET", "/v1/prices", {"limit", "starting_after", "ending_before", "active", "product", "type"})
def list_prices(sb: Sandbox, params: Params) -> dict[str, Any]:
    active, product, kind = params.boolean("active"), params.text("product"), params.text("type")
    prices = [p for p in sb.store.all("price")
              if (active is None or p["active"] == active) and (product is None or p["product"] == product)
              and (kind is None or p["type"] == kind)]
    return paginate(prices, params, "/v1/prices")


COUPON_PARAMS = {"id", "percent_off", "amount_off", "currency", "duration", "duration_in_months", "name",
                 "metadata", "max_redemptions", "redeem_by"}


@router.add("POST", "/v1/coupons", COUPON_PARAMS)
def create_coupon(sb: Sandbox, params: Params) -> dict[str, Any]:
    duration = params.text("duration", "once")
    if duration not in {"once", "forever", "repeating"}:
        raise parameter_invalid("duration", f"Invalid duration: {duration}")
    percent = params.text("percent_off")
    amount_off = params.integer("amount_off", minimum=1)
    if (percent is None) == (amount_off is None):
        raise InvalidRequest("You must pass either percent_off or amount_off.", param="percent_off")
    percent_value = None
    if percent is not None:
        try:
            percent_value = float(percent)
        except ValueError:
            raise parameter_invalid("percent_off", f"Invalid decimal: {percent}") from None
        if not 0 < percent_value <= 100:
            raise parameter_invalid("percent_off", "percent_off must be between 0 and 100")
    currency = params.text("currency")
    if amount_off is not None and not currency:
        raise parameter_missing("currency")
    months = params.integer("duration_in_months", minimum=1)
    if duration == "repeating" and months is None:
        raise parameter_missing("duration_in_months")
    coupon_id = params.text("id") or sb.new_id("x", 8).split("_")[1]
    if sb.store.find(coupon_id):
        raise InvalidRequest("Coupon already exists.", code="resource_already_exists", param="id")
    coupon = {
        "id": coupon_id,
        "object": "coupon",
        "amount_off": amount_off,
        "created": sb.now(),
        "currency": currency.lower() if currency else None,
        "duration": duration,
        "duration_in_months": months if duration == "repeating" else None,
        "livemode": False,
        "max_redemptions": params.integer("max_redemptions", minimum=1),
        "metadata": {},
        "name": params.text("name"),
        "percent_off": percent_value,
        "redeem_by": params.integer("redeem_by"),
        "times_redeemed": 0,
        "valid": True,
    }
    return create(sb, coupon, params)


@router.add("GET", "/v1/coupons/{coupon_id}")
def retrieve_coupon(sb: Sandbox, params: Params, coupon_id: str) -> dict[str, Any]:
    return sb.store.get("coupon", coupon_id)


@router.add("GET", "/v1/coupons", {"limit", "starting_after", "ending_before"})
def list_coupons(sb: Sandbox, params: Params) -> dict[str, Any]:
    return paginate(sb.store.all("coupon"), params, "/v1/coupons")

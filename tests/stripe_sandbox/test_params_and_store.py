"""Units of the sandbox core: Stripe's form encoding, all-or-nothing store changes, previous_attributes."""
import pytest

from backoffice.stripe_sandbox.errors import InvalidRequest, ResourceMissing
from backoffice.stripe_sandbox.events import previous_attributes
from backoffice.stripe_sandbox.params import decode
from backoffice.stripe_sandbox.store import Store


def test_decode_nested_keys_as_the_sdk_sends_them():
    body = ("items[0][price]=price_a&items[0][quantity]=2&items[1][price]=price_b&metadata[tenant_id]=ten_1"
            "&expand[]=latest_invoice&expand[]=customer&address[line1]=N%C3%B8rregade+1&cancel_at_period_end=true")
    assert decode(body) == {
        "items": [{"price": "price_a", "quantity": "2"}, {"price": "price_b"}],
        "metadata": {"tenant_id": "ten_1"},
        "expand": ["latest_invoice", "customer"],
        "address": {"line1": "Nørregade 1"},
        "cancel_at_period_end": "true",
    }


def test_decode_keeps_sparse_indexes_as_a_hash_and_blank_values():
    assert decode("items[1][price]=p&metadata=") == {"items": {"1": {"price": "p"}}, "metadata": ""}


@pytest.mark.parametrize("body", ["a[b]=1&a=2", "a=1&a[b]=2", "a[b]c=1"])
def test_decode_refuses_contradictory_or_malformed_keys(body):
    with pytest.raises(InvalidRequest):
        decode(body)


def test_store_transaction_undoes_adds_and_changes_on_error():
    store = Store(seed=1)
    kept = store.add({"id": "cus_1", "object": "customer", "name": "Before"})
    with pytest.raises(RuntimeError), store.transaction():
        store.touch(kept)
        kept["name"] = "After"
        store.add({"id": "cus_2", "object": "customer"})
        raise RuntimeError("midway")
    assert store.objects == {"cus_1": {"id": "cus_1", "object": "customer", "name": "Before"}}
    assert store.by_type == {"customer": ["cus_1"]}


def test_store_get_checks_the_type():
    store = Store(seed=1)
    store.add({"id": "cus_1", "object": "customer"})
    with pytest.raises(ResourceMissing, match="No such price: 'cus_1'"):
        store.get("price", "cus_1")


def test_ids_are_deterministic_under_a_seed():
    assert Store(seed=3).new_id("cus") == Store(seed=3).new_id("cus")
    assert Store(seed=3).new_id("cus").startswith("cus_")


def test_previous_attributes_diffs_hashes_and_keeps_lists_whole():
    before = {"status": "active", "metadata": {"a": "1", "b": "2"}, "cancellation_details": {"reason": None},
              "items": {"object": "list", "data": [{"id": "si_1", "current_period_end": 10}]}, "same": 1}
    after = {"status": "past_due", "metadata": {"a": "1", "b": "3"}, "cancellation_details": {"reason": "x"},
             "items": {"object": "list", "data": [{"id": "si_1", "current_period_end": 20}]}, "same": 1}
    assert previous_attributes(before, after) == {
        "status": "active",
        "metadata": {"b": "2"},
        "cancellation_details": {"reason": None},
        "items": {"data": [{"id": "si_1", "current_period_end": 10}]},
    }

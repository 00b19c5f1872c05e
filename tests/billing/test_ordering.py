"""The §4.4 order of a customer's events, on small hand-made events: Stripe `created`, then same-second state
chaining per object, then type precedence, then the event id. Never arrival order."""
import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from backoffice.billing.ledger.ordering import (
    CHAIN_SEARCH_LIMIT,
    PRECEDENCE,
    ArchivedEvent,
    matches,
    order_events,
)

T = 1767225600  # 2026-01-01T00:00:00Z


def event(event_id, event_type, created, obj, previous=None):
    data = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return ArchivedEvent(event_id, event_type, created, "2025-03-31.basil",
                         {"id": event_id, "object": "event", "type": event_type, "created": created, "data": data})


def ids(events):
    return [e.id for e in events]


def every_order(events):
    """The order of each permutation of the events (they are few)."""
    return {tuple(ids(order_events(list(p)))) for p in itertools.permutations(events)}


def sub(**fields):
    return {"id": "sub_1", "object": "subscription", "status": "active", "cancel_at_period_end": False,
            "metadata": {}, **fields}


def test_created_decides_before_arrival_order_type_and_id():
    late = event("evt_a", "customer.created", T + 2, {"id": "cus_1", "object": "customer"})
    early = event("evt_c", "customer.deleted", T, {"id": "cus_2", "object": "customer"})
    middle = event("evt_b", "invoice.paid", T + 1, {"id": "in_1", "object": "invoice"})
    assert every_order([late, early, middle]) == {("evt_c", "evt_b", "evt_a")}


def test_same_second_updates_follow_their_previous_attributes_chain():
    created = event("evt_0", "customer.subscription.created", T, sub(metadata={"step": "0"}))
    # Three updates in one second, ids the wrong way round: only the chain of states can order them.
    steps = [event(event_id, "customer.subscription.updated", T + 1, sub(metadata={"step": str(n + 1)}),
                   {"metadata": {"step": str(n)}}) for n, event_id in enumerate(["evt_z", "evt_y", "evt_x"])]
    assert ids(order_events([*steps[::-1], created])) == ["evt_0", "evt_z", "evt_y", "evt_x"]
    assert every_order([created, *steps]) == {("evt_0", "evt_z", "evt_y", "evt_x")}


def test_a_chain_longer_than_the_search_limit_still_follows_its_states():
    steps = CHAIN_SEARCH_LIMIT + 3
    created = event("evt_000", "customer.subscription.created", T, sub(metadata={"step": "0"}))
    updates = [event(f"evt_{steps - n:03d}", "customer.subscription.updated", T + 1, sub(metadata={"step": str(n + 1)}),
                     {"metadata": {"step": str(n)}}) for n in range(steps)]
    assert ids(order_events([*updates, created])) == ["evt_000", *ids(updates)]


def test_the_chain_starts_from_the_state_created_in_the_same_second():
    created = event("evt_9", "customer.subscription.created", T, sub())
    cancel = event("evt_2", "customer.subscription.updated", T, sub(cancel_at_period_end=True),
                   {"cancel_at_period_end": False})
    reactivate = event("evt_1", "customer.subscription.updated", T, sub(), {"cancel_at_period_end": True})
    assert every_order([created, cancel, reactivate]) == {("evt_9", "evt_2", "evt_1")}


def test_the_event_that_keeps_the_chain_going_comes_first():
    # Before this second: active, in the period ending at T, invoice in_0.
    before = event("evt_0", "customer.subscription.created", T - 3600,
                   sub(current_period_end=T, latest_invoice="in_0"))
    # The renewal names the period it moved; the payment failure names only the status. Both match the state
    # before the second, but only past_due's previous_attributes match the renewal's after-state, not the other
    # way round: renewal first. Its id sorts last, so neither the id nor the type decides.
    renewal = event("evt_b", "customer.subscription.updated", T,
                    sub(current_period_end=T + 2592000, latest_invoice="in_1"),
                    {"current_period_end": T, "latest_invoice": "in_0"})
    past_due = event("evt_a", "customer.subscription.updated", T,
                     sub(status="past_due", current_period_end=T + 2592000, latest_invoice="in_1"),
                     {"status": "active"})
    assert every_order([before, renewal, past_due]) == {("evt_0", "evt_b", "evt_a")}


def test_a_step_that_matches_now_never_strands_later_events():
    # In one second a subscriber cancels and undoes it, upgrades, then goes back to standard with two seats.
    # Cancelling and upgrading both match the first state, and after the cancellation both undoing it and
    # upgrading match again: upgrading there would strand the undo (cancel_at_period_end is no longer true).
    before = event("evt_000", "customer.subscription.created", T - 60, sub(price="std", quantity=1))
    cancel = event("evt_174", "customer.subscription.updated", T, sub(cancel_at_period_end=True, price="std", quantity=1),
                   {"cancel_at_period_end": False})
    undo = event("evt_619", "customer.subscription.updated", T, sub(price="std", quantity=1),
                 {"cancel_at_period_end": True})
    upgrade = event("evt_544", "customer.subscription.updated", T, sub(price="prem", quantity=1), {"price": "std"})
    back = event("evt_160", "customer.subscription.updated", T, sub(price="std", quantity=2),
                 {"price": "prem", "quantity": 1})
    assert every_order([before, cancel, undo, upgrade, back]) == {("evt_000", "evt_174", "evt_619", "evt_544", "evt_160")}


@st.composite
def same_second_histories(draw):
    """One subscription's true history: a state before, then updates in one second, each naming what it changed."""
    state = {"id": "sub_1", "object": "subscription", "a": 0, "b": 0, "c": 0}
    events = [event("evt_000", "customer.subscription.created", T - 60, dict(state))]
    used = set()
    for _ in range(draw(st.integers(2, 6))):
        changed = draw(st.lists(st.sampled_from("abc"), min_size=1, max_size=2, unique=True))
        new = dict(state)
        for key in changed:
            new[key] = draw(st.sampled_from([v for v in range(3) if v != state[key]]))
        event_id = draw(st.text("0123456789", min_size=3, max_size=3).filter(lambda i: i not in used))
        used.add(event_id)
        events.append(event(f"evt_{event_id}", "customer.subscription.updated", T, new, {k: state[k] for k in changed}))
        state = new
    return events


@settings(max_examples=300, deadline=None)
@given(history=same_second_histories(), data=st.data())
def test_a_same_second_history_in_any_arrival_order_is_put_back_into_a_chain(history, data):
    ordered = order_events(data.draw(st.permutations(history), label="arrival order"))
    # Every update's previous_attributes match the state the one before it left (changes that commute may
    # swap; nothing is stranded).
    for before, after in itertools.pairwise(ordered):
        assert matches(before.object, after.previous_attributes), ids(ordered)


def test_an_archive_that_starts_within_the_second_still_chains():
    # No state before the second (history begins here, e.g. after disaster recovery): nothing can chain first,
    # but only the renewal first lets the other chain.
    renewal = event("evt_b", "customer.subscription.updated", T, sub(current_period_end=T + 2592000),
                    {"current_period_end": T})
    past_due = event("evt_a", "customer.subscription.updated", T, sub(status="past_due", current_period_end=T + 2592000),
                     {"status": "active"})
    assert every_order([renewal, past_due]) == {("evt_b", "evt_a")}


def test_among_steps_that_chain_as_far_the_one_more_events_chain_from_comes_first():
    before = event("evt_0", "customer.subscription.created", T - 60, sub(x=0, y=0))
    # From the state before, x-then-... and y-then-... both chain all three; x's after-state is named by two
    # others' previous_attributes, y's by one: x first, although y's id sorts first.
    x = event("evt_3", "customer.subscription.updated", T, sub(x=1, y=0), {"x": 0})
    y = event("evt_1", "customer.subscription.updated", T, sub(x=0, y=1), {"y": 0})
    x_again = event("evt_2", "customer.subscription.updated", T, sub(x=2, y=0), {"x": 1})
    assert every_order([before, x, y, x_again]) == {("evt_0", "evt_3", "evt_2", "evt_1")}


def item(price_id, amount):
    return {"id": "si_1", "object": "subscription_item", "quantity": 1,
            "price": {"id": price_id, "object": "price", "unit_amount": amount, "metadata": {}}}


def items(*listed):
    return {"object": "list", "data": list(listed), "has_more": False, "url": "/v1/subscription_items?subscription=sub_1"}


def test_nested_previous_attributes_match_inside_list_objects():
    state = {"items": items(item("price_std", 4900))}
    # Stripe's previous_attributes of a list object carry only its `data`.
    assert matches(state, {"items": {"data": [item("price_std", 4900)]}})
    assert not matches(state, {"items": {"data": [item("price_prem", 9900)]}})
    assert not matches(state, {"items": {"data": [item("price_std", 4900), item("price_std", 4900)]}})
    assert not matches({"items": None}, {"items": {"data": []}})
    assert matches({"metadata": {}}, {"metadata": {"test": None}})  # a key that was absent before
    created = event("evt_0", "customer.subscription.created", T - 60, sub(items=items(item("price_std", 4900))))
    upgrade = event("evt_b", "customer.subscription.updated", T, sub(items=items(item("price_prem", 9900))),
                    {"items": {"data": [item("price_std", 4900)]}})
    downgrade = event("evt_a", "customer.subscription.updated", T, sub(items=items(item("price_std", 4900))),
                      {"items": {"data": [item("price_prem", 9900)]}})
    assert every_order([created, upgrade, downgrade]) == {("evt_0", "evt_b", "evt_a")}


def test_type_precedence_across_objects_in_one_second():
    listed = [
        ("customer.created", "cus_1"), ("payment_method.attached", "pm_1"), ("customer.subscription.created", "sub_1"),
        ("invoice.payment_succeeded", "in_1"), ("charge.succeeded", "ch_1"), ("customer.subscription.deleted", "sub_2"),
        ("customer.deleted", "cus_2"),
    ]
    # Ids descending, so the id alone would give the reverse.
    events = [event(f"evt_{9 - n}", kind, T, {"id": object_id}) for n, (kind, object_id) in enumerate(listed)]
    assert [e.type for e in order_events(events[::-1])] == [kind for kind, _ in listed]
    assert len(every_order(events)) == 1


def test_every_listed_type_in_precedence_then_the_unlisted():
    kinds = [name for entry in PRECEDENCE for name in (entry if isinstance(entry, tuple) else (entry,))]
    kinds = [k.replace("*", "created") for k in kinds]  # invoice.* → invoice.created and so on
    events = [event(f"evt_{len(kinds) - n:02d}", kind, T, {"id": f"obj_{n}"}) for n, kind in enumerate(kinds)]
    unlisted = event("evt_00", "customer.discount.created", T, {"id": "di_1"})
    ordered = [e.type for e in order_events([unlisted, *events])]
    # The three schedule endings share a rank: the id decides among them (evt_… ascending = listed order reversed).
    endings = ["subscription_schedule.completed", "subscription_schedule.canceled", "subscription_schedule.released"]
    expected = [k for k in kinds if k not in endings]
    expected[expected.index("invoice.created"):expected.index("invoice.created")] = endings
    assert ordered == [*expected, "customer.discount.created"]


def test_the_event_id_breaks_what_nothing_else_decides():
    paid = event("evt_b", "invoice.paid", T, {"id": "in_1"})
    finalized = event("evt_a", "invoice.finalized", T, {"id": "in_2"})
    refunded = event("evt_c", "charge.refunded", T, {"id": "ch_1"})
    assert every_order([paid, finalized, refunded]) == {("evt_a", "evt_b", "evt_c")}
    # The same object, no previous_attributes: the id too.
    first = event("evt_1", "invoice.updated", T, {"id": "in_1", "status": "open"})
    second = event("evt_2", "invoice.updated", T, {"id": "in_1", "status": "paid"})
    assert every_order([second, first]) == {("evt_1", "evt_2")}


# --- any permutation, the same order ---------------------------------------------------------------------------

KINDS = ["customer.created", "customer.updated", "customer.subscription.created", "customer.subscription.updated",
         "customer.subscription.deleted", "invoice.paid", "charge.refunded", "subscription_schedule.updated"]


@st.composite
def archives(draw):
    """A customer's archive: few seconds and few objects, so that seconds, objects and chains collide."""
    count = draw(st.integers(1, 9))
    events = []
    for n in range(count):
        object_id = draw(st.sampled_from(["sub_1", "sub_2", "cus_1", None]))
        state = draw(st.integers(0, 2))
        obj = {"id": object_id, "v": state, "tags": {"k": draw(st.sampled_from(["x", "y"]))}}
        previous = draw(st.one_of(st.none(), st.fixed_dictionaries({"v": st.integers(0, 2)}),
                                  st.fixed_dictionaries({"tags": st.fixed_dictionaries({"k": st.sampled_from(["x", "y"])})})))
        events.append(event(f"evt_{n:02d}", draw(st.sampled_from(KINDS)), T + draw(st.integers(0, 2)), obj, previous))
    return events


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_permutation_gives_the_same_order(data):
    events = data.draw(archives(), label="archive")
    expected = order_events(events)
    shuffled = data.draw(st.permutations(events), label="arrival order")
    assert order_events(shuffled) == expected
    assert sorted(ids(expected)) == sorted(ids(events))
    assert [e.created for e in expected] == sorted(e.created for e in events)

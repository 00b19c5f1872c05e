"""The accounts list query on PostgreSQL: every filter, every sort both ways with ties by name, search, pages."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from backoffice.paging import BadCursor, PageOutOfRange
from backoffice.read import account_list as queries
from tests.factories import make_billing_event, make_subscription, make_tenant

PLANS = ("basis", "standard", "premium")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def account(session, name, *, plan="basis", status=None, mrr=None, renewal=None, country=None, created_days=0,
            drift=False, price=None, synced=True, **subscription):
    tenant = make_tenant(session, name=name, plan=plan, country=country, created_at=T0 + timedelta(days=created_days))
    if status is not None:
        row = make_subscription(session, tenant_id=tenant.id, plan=plan if plan != "basis" else None,
                                account_status=status, forward_mrr=mrr or Decimal("0"),
                                current_price_amount=price,
                                current_price_currency=subscription.pop("currency", "EUR") if price is not None else None,
                                current_period_end=renewal, has_drift_detected=drift, **subscription)
        if synced and price is not None:
            make_billing_event(session, subscription=row, event_type="SubscriptionCreated", from_plan=None, to_plan=plan,
                               previous_amount=Decimal("0"), new_amount=price, amount_delta=price,
                               committed_mrr=price, movement="new")
    return tenant


@pytest.fixture
def dataset(db_session):
    s = db_session
    account(s, "Delta", plan="premium", status="active", mrr=Decimal("99"), price=Decimal("99"),
            renewal=T0 + timedelta(days=5), country="DK", created_days=4)
    account(s, "alpha", plan="standard", status="downgrading", mrr=Decimal("19"), price=Decimal("49"),
            renewal=T0 + timedelta(days=2), country="SE", created_days=1, drift=True, scheduled_plan="basis",
            scheduled_price_amount=Decimal("19"))
    account(s, "Charlie", plan="standard", status="canceling", mrr=Decimal("0"), price=Decimal("49"),
            renewal=T0 + timedelta(days=9), country="DK", created_days=3, cancel_at_period_end=True, synced=False)
    account(s, "Bravo", plan="basis", status="canceled", created_days=2, country="NO")
    account(s, "Echo", plan="basis", created_days=0)  # never subscribed: Free
    account(s, "Echo", plan="premium", status="active", mrr=Decimal("99"), price=Decimal("99"),
            renewal=T0 + timedelta(days=5), created_days=5)  # same name: ties broken by id
    make_tenant(s, name="Alpha deleted", deleted_at=T0)
    s.flush()
    return s


def names(page) -> list[str]:
    return [row.name for row in page.rows]


def listing(session, criteria=None, **options):
    return queries.list_accounts(session, criteria or queries.AccountFilter(), plan_order=PLANS, **options)


def test_default_order_is_name_case_insensitive_and_deleted_tenants_never_show(dataset):
    page = listing(dataset)
    assert names(page)[:5] == ["alpha", "Bravo", "Charlie", "Delta", "Echo"]
    assert page.total == 6 and "Alpha deleted" not in names(page)


@pytest.mark.parametrize("plans, expected", [
    (("premium",), ["Delta", "Echo"]),
    (("standard", "basis"), ["alpha", "Bravo", "Charlie", "Echo"]),
])
def test_plan_filter_is_or_within(dataset, plans, expected):
    assert names(listing(dataset, queries.AccountFilter(plans=plans))) == expected


@pytest.mark.parametrize("status, expected", [
    ("active", ["Delta", "Echo"]), ("downgrading", ["alpha"]), ("canceling", ["Charlie"]),
    ("canceled", ["Bravo"]), ("free", ["Echo"]),
])
def test_each_status_filter(dataset, status, expected):
    assert names(listing(dataset, queries.AccountFilter(statuses=(status,)))) == expected


def test_filters_combine_with_and_across(dataset):
    criteria = queries.AccountFilter(plans=("standard",), statuses=("canceling", "active"))
    assert names(listing(dataset, criteria)) == ["Charlie"]


def test_unsynced_and_drift_flags(dataset):
    assert names(listing(dataset, queries.AccountFilter(unsynced=True))) == ["Charlie"]
    assert names(listing(dataset, queries.AccountFilter(drift_detected=True))) == ["alpha"]
    assert names(listing(dataset, queries.AccountFilter(drift_detected=True, unsynced=True))) == []


def test_search_by_name_contains_or_exact_id(dataset):
    assert names(listing(dataset, queries.AccountFilter(search="lph"))) == ["alpha"]
    delta = listing(dataset, queries.AccountFilter(search="delta")).rows[0]
    assert names(listing(dataset, queries.AccountFilter(search=delta.id))) == ["Delta"]
    assert names(listing(dataset, queries.AccountFilter(search=delta.id[:-1]))) == []


def test_like_wildcards_in_the_search_are_literal(db_session):
    for name in ("100% Fjord", "1000 Fjord", "a_b Lab", "axb Lab", "back\\slash"):
        make_tenant(db_session, name=name)
    assert names(listing(db_session, queries.AccountFilter(search="100%"))) == ["100% Fjord"]
    assert names(listing(db_session, queries.AccountFilter(search="a_b"))) == ["a_b Lab"]
    assert names(listing(db_session, queries.AccountFilter(search="k\\s"))) == ["back\\slash"]


@pytest.mark.parametrize("sort, ascending, descending", [
    ("name", ["alpha", "Bravo", "Charlie", "Delta", "Echo", "Echo"], ["Echo", "Echo", "Delta", "Charlie", "Bravo", "alpha"]),
    ("plan", ["Bravo", "Echo", "alpha", "Charlie", "Delta", "Echo"], ["Delta", "Echo", "alpha", "Charlie", "Bravo", "Echo"]),
    ("mrr", ["Bravo", "Charlie", "Echo", "alpha", "Delta", "Echo"], ["Delta", "Echo", "alpha", "Bravo", "Charlie", "Echo"]),
    # Empty renewal dates and countries stay last in both directions.
    ("renewal", ["alpha", "Delta", "Echo", "Charlie", "Bravo", "Echo"],
     ["Charlie", "Delta", "Echo", "alpha", "Bravo", "Echo"]),
    ("status", ["Delta", "Echo", "alpha", "Charlie", "Bravo", "Echo"], ["Echo", "Bravo", "Charlie", "alpha", "Delta", "Echo"]),
    ("country", ["Charlie", "Delta", "Bravo", "alpha", "Echo", "Echo"], ["alpha", "Bravo", "Charlie", "Delta", "Echo", "Echo"]),
    ("created", ["Echo", "alpha", "Bravo", "Charlie", "Delta", "Echo"], ["Echo", "Delta", "Charlie", "Bravo", "alpha", "Echo"]),
])
def test_each_sort_both_directions_ties_by_name(dataset, sort, ascending, descending):
    assert names(listing(dataset, sort=sort)) == ascending
    assert names(listing(dataset, sort=sort, descending=True)) == descending


def test_pages_and_bounds(dataset):
    first = listing(dataset, per_page=4)
    second = listing(dataset, per_page=4, page=2)
    assert (names(first), names(second), first.pages) == (["alpha", "Bravo", "Charlie", "Delta"], ["Echo", "Echo"], 2)
    with pytest.raises(PageOutOfRange) as error:
        listing(dataset, per_page=4, page=3)
    assert error.value.pages == 2
    assert listing(dataset, queries.AccountFilter(search="nothing"), page=1).rows == []


def test_cursor_pages_equal_offset_pages_in_every_sort(dataset):
    for sort in queries.ACCOUNT_SORTS:
        for descending in (False, True):
            everything = names(listing(dataset, sort=sort, descending=descending, per_page=100))
            seen, cursor, page_number = [], None, 1
            while True:
                page = listing(dataset, sort=sort, descending=descending, per_page=2, page=page_number, after=cursor)
                seen += names(page)
                if page.next_cursor is None or len(seen) >= page.total:
                    break
                cursor, page_number = page.next_cursor, page_number + 1
            assert seen == everything, (sort, descending)
            streamed = [row.name for row in queries.stream_accounts(dataset, queries.AccountFilter(), sort=sort,
                                                                   descending=descending, plan_order=PLANS)]
            assert streamed == everything


def test_a_cursor_from_another_list_is_refused(dataset):
    with pytest.raises(BadCursor):
        listing(dataset, after="bm90IGEgY3Vyc29y")


def test_struck_mrr_only_while_downgrading_or_canceling(dataset):
    rows = {row.name: row for row in listing(dataset).rows}
    assert rows["alpha"].struck_mrr == Decimal("49") and rows["alpha"].forward_mrr == Decimal("19")
    assert rows["Charlie"].struck_mrr == Decimal("49")
    assert rows["Delta"].struck_mrr is None


def test_a_search_counts_its_matches_in_the_page_query_and_still_knows_the_last_page(dataset):
    found = listing(dataset, queries.AccountFilter(search="e"), per_page=10)
    assert (found.total, names(found)) == (4, ["Charlie", "Delta", "Echo", "Echo"])
    assert listing(dataset, queries.AccountFilter(search="zzz")).total == 0
    with pytest.raises(PageOutOfRange):
        listing(dataset, queries.AccountFilter(search="echo"), per_page=10, page=2)
    paged = listing(dataset, queries.AccountFilter(search="a"), per_page=2, page=2)
    assert paged.total == len(names(listing(dataset, queries.AccountFilter(search="a"), per_page=100)))


def test_mrr_sorts_in_the_reporting_currency_when_accounts_bill_in_several(db_session):
    """500 kronor is less than 49 euros: sorted by MRR, accounts billed in several currencies compare at today's rate
    (the cursor pages agree with it), one currency alone compares as stored, and a currency with no rate as is."""
    from backoffice.fx import rates

    today = datetime.now(UTC).date()
    rates.refresh(db_session, rates.parse(["Date,USD,SEK,DKK\n", f"{today - timedelta(days=2)},1.0000,11.0000,7.4600\n"]))
    for name, currency, amount in (("Euro", "EUR", "50"), ("Dollar", "USD", "49"), ("Krona", "SEK", "500"),
                                   ("Krone", "DKK", "400"), ("Zloty", "PLN", "30")):
        account(db_session, name, plan="standard", status="active", mrr=Decimal(amount), price=Decimal(amount),
                currency=currency)
    db_session.flush()
    # In euros: 53.62, 50, 49, 45.45, 30 (no PLN rate: as is).
    assert names(listing(db_session, sort="mrr", descending=True, reporting="EUR")) == [
        "Krone", "Euro", "Dollar", "Krona", "Zloty"]
    pages, cursor = [], None
    for number in (1, 2, 3):
        page = listing(db_session, sort="mrr", per_page=2, page=number, after=cursor, reporting="EUR")
        pages += names(page)
        cursor = page.next_cursor
    assert pages == ["Zloty", "Krona", "Dollar", "Euro", "Krone"]
    assert names(listing(db_session, sort="mrr", descending=True)) == ["Krona", "Krone", "Euro", "Dollar", "Zloty"]
    # 400 kroner are 589.81 kronor: the filtered list compares them too, but one currency alone as stored.
    kroner = queries.AccountFilter(currencies=("SEK", "DKK"))
    assert names(listing(db_session, kroner, sort="mrr", descending=True, reporting="SEK")) == ["Krone", "Krona"]
    only_sek = queries.AccountFilter(currencies=("SEK",))
    assert names(listing(db_session, only_sek, sort="mrr", descending=True, reporting="EUR")) == ["Krona"]
